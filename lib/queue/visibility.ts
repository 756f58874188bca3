import type { Logger } from '@aws-lambda-powertools/logger'
import { ChangeMessageVisibilityBatchCommand, type SQSClient } from '@aws-sdk/client-sqs'
import { SQS_MAX_VISIBILITY_SECONDS } from '../config.ts'

/**
 * Sets when each retried record comes back: a record reported in batchItemFailures keeps the
 * visibility timeout it has, so the worker sets it to the policy's delay first. If SQS does
 * not take a change the record still comes back, only after the queue's default timeout.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibilityBatch.html
 */

export interface VisibilityChange {
  readonly id: string
  readonly receiptHandle: string
  readonly seconds: number
}

const BATCH = 10

export const changeVisibility = async (
  sqs: SQSClient,
  queueUrl: string,
  changes: readonly VisibilityChange[],
  logger: Logger,
): Promise<void> => {
  const calls: Promise<void>[] = []
  for (let i = 0; i < changes.length; i += BATCH) {
    const entries = changes.slice(i, i + BATCH).map((change, index) => ({
      Id: String(index),
      ReceiptHandle: change.receiptHandle,
      VisibilityTimeout: Math.min(SQS_MAX_VISIBILITY_SECONDS, Math.max(0, Math.round(change.seconds))),
    }))
    calls.push(
      sqs.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: queueUrl, Entries: entries })).then(
        (result) => {
          if (result.Failed?.length)
            logger.warn('visibility not changed for some records', { failed: result.Failed })
        },
        (error: unknown) =>
          logger.warn('visibility change failed', { error: error as Error, records: entries.length }),
      ),
    )
  }
  await Promise.all(calls)
}
