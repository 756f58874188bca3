import {
  DeleteMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import type { Context, SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda'
import { createLambdaContext } from './lambda-context.ts'

/**
 * What Lambda's SQS event source mapping does, for local runs and tests: up to
 * `maxConcurrency` pollers long-poll batches, hand them to the function as Lambda-shaped
 * records with a deadline, delete what succeeded, and leave `batchItemFailures` (or the
 * whole batch, when the function throws or answers with an unknown id) for redelivery.
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
 */

export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | undefined>

export interface PollerOptions {
  readonly sqs: SQSClient
  readonly queueUrl: string
  readonly queueArn: string
  /**
   * The function. Several handlers stand for several warm instances (module state such as a
   * pacer is per instance in Lambda): poller loop i uses handler i % handlers.length.
   */
  readonly handler: SqsHandler | readonly SqsHandler[]
  readonly batchSize?: number
  readonly maxConcurrency?: number
  readonly waitTimeSeconds?: number
  readonly functionTimeoutMs?: number
  readonly region?: string
  readonly onError?: (error: unknown) => void
}

export interface PollerStats {
  invocations: number
  records: number
  deleted: number
  reportedFailures: number
  failedBatches: number
}

export interface Poller {
  readonly stats: PollerStats
  readonly stop: () => Promise<void>
}

const toLambdaAttribute = (value: MessageAttributeValue) => ({
  dataType: value.DataType ?? 'String',
  stringValue: value.StringValue,
  binaryValue: value.BinaryValue ? Buffer.from(value.BinaryValue).toString('base64') : undefined,
  stringListValues: [],
  binaryListValues: [],
})

export const toSqsRecord = (message: Message, queueArn: string, region: string): SQSRecord => {
  const attributes = message.Attributes ?? {}
  return {
    messageId: message.MessageId as string,
    receiptHandle: message.ReceiptHandle as string,
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? '000000000000',
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: Object.fromEntries(
      Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [
        name,
        toLambdaAttribute(value),
      ]),
    ) as SQSMessageAttributes,
    md5OfBody: message.MD5OfBody ?? '',
    ...(message.MD5OfMessageAttributes ? { md5OfMessageAttributes: message.MD5OfMessageAttributes } : {}),
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  }
}

/** Which records to delete after an invocation; Lambda treats an unknown or empty id as a failed batch. */
export const recordsToDelete = (
  records: readonly SQSRecord[],
  response: SQSBatchResponse | undefined,
): SQSRecord[] => {
  const failures = response?.batchItemFailures ?? []
  const ids = new Set(records.map((record) => record.messageId))
  if (failures.some((failure) => !failure.itemIdentifier || !ids.has(failure.itemIdentifier))) return []
  const failed = new Set(failures.map((failure) => failure.itemIdentifier))
  return records.filter((record) => !failed.has(record.messageId))
}

export const startPoller = (options: PollerOptions): Poller => {
  const { sqs, queueUrl, queueArn, handler } = options
  const region = options.region ?? 'us-east-1'
  const stats: PollerStats = { invocations: 0, records: 0, deleted: 0, reportedFailures: 0, failedBatches: 0 }
  const abort = new AbortController()
  const onError = options.onError ?? ((error: unknown) => console.error('poller:', error))

  const handlers = [handler].flat()
  const pollOnce = async (instance: number) => {
    const received = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: options.batchSize ?? 10,
        WaitTimeSeconds: options.waitTimeSeconds ?? 20,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
      { abortSignal: abort.signal },
    )
    const messages = received.Messages ?? []
    if (messages.length === 0) return
    const records = messages.map((message) => toSqsRecord(message, queueArn, region))
    stats.invocations++
    stats.records += records.length
    let toDelete: SQSRecord[]
    try {
      const context = createLambdaContext('deliver', options.functionTimeoutMs ?? 60_000)
      const invoke = handlers[instance % handlers.length] as SqsHandler
      const response = await invoke({ Records: records }, context)
      toDelete = recordsToDelete(records, response ?? undefined)
      stats.reportedFailures += records.length - toDelete.length
    } catch (error) {
      stats.failedBatches++
      onError(error)
      return
    }
    if (toDelete.length === 0) return
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: toDelete.map((record, index) => ({
          Id: String(index),
          ReceiptHandle: record.receiptHandle,
        })),
      }),
    )
    stats.deleted += toDelete.length
  }

  const loop = async (instance: number) => {
    while (!abort.signal.aborted) {
      try {
        await pollOnce(instance)
      } catch (error) {
        if (abort.signal.aborted) return
        onError(error)
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
    }
  }
  const loops = Array.from({ length: options.maxConcurrency ?? 1 }, (_, instance) => loop(instance))

  return {
    stats,
    stop: async () => {
      abort.abort()
      await Promise.allSettled(loops)
    },
  }
}
