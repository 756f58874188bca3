import { setTimeout as sleep } from 'node:timers/promises'
import {
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import { fullJitterBackoffMs } from '../backoff.ts'
import { packInWaves } from './batch-pack.ts'
import { fifoFields, isFifoQueueUrl, type OutgoingMessage, toSqsAttributes } from './sqs-message.ts'

/**
 * Puts messages on a queue with as few SendMessageBatch calls as the limits allow, keeping each
 * message group's order (a group is a user, lib/queue/message-group.ts): calls run concurrently
 * wave by wave (lib/queue/batch-pack.ts, packInWaves), and an entry SQS did not take holds its
 * group's later entries back, so they are retried behind it, never sent ahead of it. On a FIFO
 * queue (URL ending in `.fifo`) each entry carries its MessageGroupId and MessageDeduplicationId.
 * Entries SQS fails (throttling, internal errors) and calls that fail outright are retried with
 * jittered backoff until the deadline; whatever is still not on the queue then is returned so
 * the caller can answer 503 and let Segment retry. An entry failed with
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

/** Sends one batch and returns the messages SQS did not take. */
const sendBatch = async (
  sqs: SQSClient,
  queueUrl: string,
  batch: readonly OutgoingMessage[],
  deadline: number,
): Promise<{ failed: OutgoingMessage[]; refused: Refusal[]; error: unknown }> => {
  const fifo = isFifoQueueUrl(queueUrl)
  const entries: SendMessageBatchRequestEntry[] = batch.map((message, index) => ({
    Id: String(index),
    MessageBody: message.body,
    MessageAttributes: toSqsAttributes(message.attributes),
    ...fifoFields(message, fifo),
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

/**
 * One round: every wave in turn. Returns what must be tried again (failed entries and every later
 * entry of their groups, in arrival order) and what SQS refused for good. A refused entry does
 * not hold its group: it is kept apart (the DLQ), as a dead-lettered event does not block its user.
 */
const sendRound = async (
  sqs: SQSClient,
  pending: readonly OutgoingMessage[],
  options: EnqueueOptions,
): Promise<{ again: OutgoingMessage[]; refused: Refusal[]; calls: number; error: unknown }> => {
  const order = new Map(pending.map((message, index) => [message, index]))
  const held = new Set<string>()
  const again: OutgoingMessage[] = []
  const refused: Refusal[] = []
  let calls = 0
  let error: unknown
  for (const wave of packInWaves(pending, options.batchMaxBytes)) {
    const batches: OutgoingMessage[][] = []
    for (const batch of wave) {
      const go = batch.filter((message) => message.group === undefined || !held.has(message.group))
      again.push(...batch.filter((message) => !go.includes(message)))
      if (go.length > 0) batches.push(go)
    }
    if (Date.now() >= options.deadline) {
      again.push(...batches.flat())
      continue
    }
    calls += batches.length
    const results = await Promise.all(
      batches.map((batch) => sendBatch(sqs, options.queueUrl, batch, options.deadline)),
    )
    for (const result of results) {
      again.push(...result.failed)
      refused.push(...result.refused)
      for (const message of result.failed) if (message.group !== undefined) held.add(message.group)
      error = result.error ?? error
    }
  }
  again.sort((a, b) => (order.get(a) as number) - (order.get(b) as number))
  return { again, refused, calls, error }
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
    const round = await sendRound(sqs, pending, options)
    calls += round.calls
    pending = round.again
    refused.push(...round.refused)
    lastError = round.error ?? lastError
    if (Date.now() >= options.deadline) break
  }
  return { unsent: pending, refused, calls, lastError }
}
