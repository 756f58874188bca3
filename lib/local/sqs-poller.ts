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
 *
 * On a FIFO queue it is Lambda's FIFO event source: batches of at most 10 and no batching
 * window (one receive is one batch), and a group's next message is not handed to any poller
 * while an earlier one is in flight or delayed by ChangeMessageVisibility. The embedded SQS
 * enforces that last rule itself, as SQS does (lib/local/fauxqs-patches.ts), so the poller needs no lock
 * of its own and cannot hide a bug that real SQS would expose.
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
 */

/** SQS hands out at most 10 messages per receive; a FIFO event source's batch is one receive. */
export const MAX_FIFO_BATCH_SIZE = 10

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
  /** Records per invocation. Above 10 (SQS's most per receive) the poller gathers several receives, as Lambda does. */
  readonly batchSize?: number
  /**
   * How long to keep gathering a batch larger than 10 before invoking with what there is
   * (MaximumBatchingWindowInSeconds). https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html#sqs-batching-window
   */
  readonly batchingWindowMs?: number
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
  /** Records handed to the function whose invocation has not finished yet. */
  inFlight: number
}

export interface Poller {
  readonly stats: PollerStats
  readonly stop: () => Promise<void>
  /** Stops receiving at once without waiting for invocations under way (they are abandoned). */
  readonly halt: () => void
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
      // FIFO records carry these, as Lambda gives them.
      ...(attributes.SequenceNumber ? { SequenceNumber: attributes.SequenceNumber } : {}),
      ...(attributes.MessageGroupId ? { MessageGroupId: attributes.MessageGroupId } : {}),
      ...(attributes.MessageDeduplicationId
        ? { MessageDeduplicationId: attributes.MessageDeduplicationId }
        : {}),
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
  const stats: PollerStats = {
    invocations: 0,
    records: 0,
    deleted: 0,
    reportedFailures: 0,
    failedBatches: 0,
    inFlight: 0,
  }
  const abort = new AbortController()
  const onError = options.onError ?? ((error: unknown) => console.error('poller:', error))

  const handlers = [handler].flat()
  const batchSize = options.batchSize ?? 10
  if (
    queueUrl.endsWith('.fifo') &&
    (batchSize > MAX_FIFO_BATCH_SIZE || (options.batchingWindowMs ?? 0) > 0)
  ) {
    throw new RangeError(
      `a FIFO event source takes batches of 1 to ${MAX_FIFO_BATCH_SIZE} and no batching window, got batchSize ${batchSize}, batchingWindowMs ${options.batchingWindowMs ?? 0}`,
    )
  }
  const receive = async (max: number, waitTimeSeconds: number) =>
    (
      await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, max),
          WaitTimeSeconds: waitTimeSeconds,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
        { abortSignal: abort.signal },
      )
    ).Messages ?? []
  /** A batch: the first receive long-polls; a batch over 10 keeps gathering until full or the window ends. */
  const gather = async (): Promise<Message[]> => {
    const messages = await receive(batchSize, options.waitTimeSeconds ?? 20)
    if (messages.length === 0 || batchSize <= 10) return messages
    const windowEnds = Date.now() + (options.batchingWindowMs ?? 0)
    while (messages.length < batchSize && !abort.signal.aborted) {
      const more = await receive(batchSize - messages.length, 0)
      messages.push(...more)
      if (more.length === 0) {
        if (Date.now() >= windowEnds) break
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    return messages
  }
  const pollOnce = async (instance: number) => {
    const messages = await gather()
    if (messages.length === 0) return
    const records = messages.map((message) => toSqsRecord(message, queueArn, region))
    stats.invocations++
    stats.records += records.length
    stats.inFlight += records.length
    try {
      await invokeAndDelete(instance, records)
    } finally {
      stats.inFlight -= records.length
    }
  }
  const invokeAndDelete = async (instance: number, records: SQSRecord[]) => {
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
    // DeleteMessageBatch takes at most 10 entries.
    for (let i = 0; i < toDelete.length; i += 10) {
      const chunk = toDelete.slice(i, i + 10)
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: chunk.map((record, index) => ({ Id: String(index), ReceiptHandle: record.receiptHandle })),
        }),
      )
      stats.deleted += chunk.length
    }
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
    halt: () => abort.abort(),
  }
}
