import type { Logger } from '@aws-lambda-powertools/logger'
import { ChangeMessageVisibilityBatchCommand, type SQSClient } from '@aws-sdk/client-sqs'
import { SQS_MAX_VISIBILITY_SECONDS } from '../config.ts'

/**
 * Sets when each retried record comes back: a record reported in batchItemFailures keeps the
 * visibility timeout it has, so the function sets it to the policy's delay first. If SQS does
 * not take a change the record still comes back, only after the queue's default timeout.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibilityBatch.html
 *
 * SQS refuses a visibility that reaches more than 12 hours past the message's receive (it does
 * not shorten it for you), and a refused change costs a receive: each delay is capped at what is
 * left of those 12 hours.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
 */

export interface VisibilityChange {
  readonly id: string
  readonly receiptHandle: string
  readonly seconds: number
}

/**
 * The event source may hold received messages up to its MaximumBatchingWindowInSeconds (at most
 * 300 s) before it invokes the function, so a record can have been received that long before
 * the invocation began. https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
 */
export const MAX_BATCHING_WINDOW_SECONDS = 300
/** Slack for the clocks and the call's own transit. */
const SLACK_SECONDS = 5

/**
 * Pure: the longest visibility SQS still accepts for a message received no earlier than
 * `receivedAtMs`, at `nowMs`.
 */
export const visibilityLeftSeconds = (receivedAtMs: number, nowMs: number): number =>
  Math.max(0, SQS_MAX_VISIBILITY_SECONDS - Math.ceil((nowMs - receivedAtMs) / 1000) - SLACK_SECONDS)

/** Pure: the earliest the event source can have received the records of an invocation that began at `invokedAtMs`. */
export const earliestReceive = (invokedAtMs: number): number =>
  invokedAtMs - MAX_BATCHING_WINDOW_SECONDS * 1000

const BATCH = 10

export interface VisibilityOptions {
  /** The earliest the messages can have been received (epoch ms): delays are capped to their 12 hours. */
  readonly receivedAtMs?: number
  readonly now?: () => number
}

export const changeVisibility = async (
  sqs: SQSClient,
  queueUrl: string,
  changes: readonly VisibilityChange[],
  logger: Logger,
  options: VisibilityOptions = {},
): Promise<void> => {
  const now = options.now ?? Date.now
  const cap =
    options.receivedAtMs === undefined
      ? SQS_MAX_VISIBILITY_SECONDS
      : visibilityLeftSeconds(options.receivedAtMs, now())
  const calls: Promise<void>[] = []
  for (let i = 0; i < changes.length; i += BATCH) {
    const entries = changes.slice(i, i + BATCH).map((change, index) => ({
      Id: String(index),
      ReceiptHandle: change.receiptHandle,
      VisibilityTimeout: Math.min(cap, Math.max(0, Math.round(change.seconds))),
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
