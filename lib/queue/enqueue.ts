import {
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import { fullJitterBackoffMs } from '../backoff.ts'
import { packBatches } from './batch-pack.ts'
import { type OutgoingMessage, toSqsAttributes } from './sqs-message.ts'

/**
 * Puts messages on a queue with as few SendMessageBatch calls as the limits allow, all sent
 * concurrently. Entries SQS fails (throttling, internal errors) and calls that fail outright
 * are retried with jittered backoff until the deadline; whatever is still not on the queue
 * then is returned so the caller can answer 503 and let Segment retry. An entry failed with
 * `SenderFault` is wrong in itself and would fail the same way on every retry (and Segment's
 * resend of the request would queue its good neighbours again each time): it is returned apart,
 * with SQS's reason, for the caller to keep elsewhere.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_BatchResultErrorEntry.html
 */

export interface EnqueueOptions {
  readonly queueUrl: string
  readonly batchMaxBytes: number
  /** Epoch ms after which no further attempt starts and in-flight calls are aborted. */
  readonly deadline: number
  readonly retryBaseMs?: number
}

/** A message SQS refused for good (SenderFault), with its code and message. */
export interface Refusal {
  readonly message: OutgoingMessage
  readonly reason: string
}

export interface EnqueueResult {
  /** Not on the queue when the deadline came: retrying can help. */
  readonly unsent: readonly OutgoingMessage[]
  /** Refused by SQS for what they are: retrying cannot help. */
  readonly refused: readonly Refusal[]
  /** SendMessageBatch calls made, retries included. */
  readonly calls: number
  /** Last error seen, for the log when something stayed unsent. */
  readonly lastError: unknown
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Sends one batch and returns the messages SQS did not take. */
const sendBatch = async (
  sqs: SQSClient,
  queueUrl: string,
  batch: readonly OutgoingMessage[],
  deadline: number,
): Promise<{ failed: OutgoingMessage[]; refused: Refusal[]; error: unknown }> => {
  const entries: SendMessageBatchRequestEntry[] = batch.map((message, index) => ({
    Id: String(index),
    MessageBody: message.body,
    MessageAttributes: toSqsAttributes(message.attributes),
  }))
  try {
    const result = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }), {
      abortSignal: AbortSignal.timeout(Math.max(1, deadline - Date.now())),
    })
    const entryOf = (entry: { Id?: string | undefined }) => batch[Number(entry.Id)] as OutgoingMessage
    const failures = result.Failed ?? []
    const first = failures[0]
    return {
      // SenderFault means the entry itself is wrong: sending it again cannot help.
      failed: failures.filter((entry) => !entry.SenderFault).map(entryOf),
      refused: failures
        .filter((entry) => entry.SenderFault)
        .map((entry) => ({
          message: entryOf(entry),
          reason: `SQS refused it: ${entry.Code ?? 'SenderFault'}: ${entry.Message ?? 'no message'}`,
        })),
      error: first ? new Error(`${first.Code}: ${first.Message ?? 'entry failed'}`) : undefined,
    }
  } catch (error) {
    return { failed: [...batch], refused: [], error }
  }
}

export const enqueue = async (
  sqs: SQSClient,
  messages: readonly OutgoingMessage[],
  options: EnqueueOptions,
): Promise<EnqueueResult> => {
  const retryBaseMs = options.retryBaseMs ?? 50
  let pending = [...messages]
  const refused: Refusal[] = []
  let calls = 0
  let lastError: unknown
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt > 0) {
      const wait = fullJitterBackoffMs(attempt, retryBaseMs, 1_000)
      if (Date.now() + wait >= options.deadline) break
      await sleep(wait)
    }
    const batches = packBatches(pending, options.batchMaxBytes)
    calls += batches.length
    const results = await Promise.all(
      batches.map((batch) => sendBatch(sqs, options.queueUrl, batch, options.deadline)),
    )
    pending = results.flatMap((result) => result.failed)
    refused.push(...results.flatMap((result) => result.refused))
    lastError = results.find((result) => result.error !== undefined)?.error ?? lastError
    if (Date.now() >= options.deadline) break
  }
  return { unsent: pending, refused, calls, lastError }
}
