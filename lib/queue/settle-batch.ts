import type { Logger } from '@aws-lambda-powertools/logger'
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs'
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda'
import { textForLog } from '../user-key.ts'
import { deadLetterMessage, plainDeadLetter } from './dead-letter.ts'
import { type GiveUpLimits, giveUpReason, receiveCountOf } from './expiry.ts'
import { fifoId } from './message-group.ts'
import { SQS_TIMEOUTS, type SqsTimeouts, sqsCallBudgetMs } from './sqs-client.ts'
import { fifoFields, toSqsAttributes } from './sqs-message.ts'
import { changeVisibility, earliestReceive, type VisibilityChange } from './visibility.ts'

/**
 * The end of an SQS batch, for every function the event source invokes with
 * ReportBatchItemFailures: each record ends deleted, retried after its own delay, or in the DLQ
 * with its reason. A retry that has run out of time or receives becomes a dead letter (expiry.ts);
 * a dead letter SQS does not take stays queued rather than lost.
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
 */

/** What happens to one record. */
export type Fate =
  | { readonly action: 'delete' }
  | {
      readonly action: 'retry'
      readonly delaySeconds: number
      readonly reason?: string | undefined
      /** It failed with an exception, not an answer: expected to fail the same way again (expiry.ts). */
      readonly exception?: boolean
      /** Courier's last HTTP status and error type, kept if the retry is given up on. */
      readonly status?: number | undefined
      readonly courierType?: string | undefined
    }
  | {
      readonly action: 'dead-letter'
      readonly reason: string
      /** Courier's HTTP status, when it answered. */
      readonly status?: number | undefined
      readonly courierType?: string | undefined
    }

/** How a fate was changed at the end: a retry given up on, or a dead letter the DLQ refused. */
export type Settled = Fate & { readonly changed?: 'given-up' | 'not-dead-lettered' }

/** Records not attempted before the deadline come back almost at once. */
export const UNSTARTED_DELAY_SECONDS = 1
export const NOT_STARTED = 'not attempted before the deadline'

/**
 * Kept back from the invocation's end to finish: one SQS call begun just before the deadline
 * (deliver's hand-over to the audience queue), then the dead letters (sent in parallel), then the
 * visibilities (set in parallel), each as long as one SQS call can take with the SDK's retry
 * (sqs-client.ts), and half a second to answer. A slow SQS then costs retries, never a timed-out
 * invocation whose whole batch comes back (and burns a receive).
 */
export const finishMarginMs = (timeouts: SqsTimeouts = SQS_TIMEOUTS): number =>
  3 * sqsCallBudgetMs(timeouts) + 500

/** What a dead letter says of its record beyond the reason: the event's ids and its user's group. */
export interface RecordIds {
  readonly messageId?: string | undefined
  readonly type?: string | undefined
  /** The message group on a FIFO DLQ: the user's, so a redrive replays their events in order. */
  readonly group: string
}

export interface BatchSettlement {
  readonly sqs: SQSClient
  readonly logger: Logger
  /** The queue the records came from (their visibilities are set there). */
  readonly queueUrl: string
  readonly dlqUrl: string
  /** A FIFO DLQ: dead letters carry group and deduplication ids. */
  readonly fifo: boolean
  readonly batchMaxBytes: number
  /** The delay of a record whose dead letter SQS did not take. */
  readonly retryBaseSeconds: number
  readonly limits: GiveUpLimits
  /** The stage named in the dead letter. */
  readonly stage: 'deliver' | 'audience-sync'
  readonly invokedAt: number
  readonly idsOf: (record: SQSRecord) => RecordIds
}

/**
 * Dead-letter ids per stage, deduplicated on the SQS message id: dead-lettering the same receive
 * twice (a retried invocation) stores it once, and the id differs from the events queue's, so a
 * redrive within SQS's 5-minute deduplication window is not dropped.
 */
const DEDUPLICATION_PREFIX = { deliver: 'dead', 'audience-sync': 'audience' } as const

/** The record's string message attributes (a redriven dead letter carries its earlier reasons in them). */
const stringAttributes = (record: SQSRecord): Record<string, string> => {
  const attributes: Record<string, string> = {}
  for (const [name, value] of Object.entries(record.messageAttributes ?? {})) {
    if (typeof value.stringValue === 'string') attributes[name] = value.stringValue
  }
  return attributes
}

/** An SQS error that is the request's fault (InvalidParameterValue …), not SQS's or the network's. */
const isSenderFault = (error: unknown): boolean =>
  typeof error === 'object' && error !== null && (error as { $fault?: string }).$fault === 'client'

const sendDeadLetter = async (
  settlement: BatchSettlement,
  record: SQSRecord,
  fate: Extract<Fate, { action: 'dead-letter' }>,
): Promise<void> => {
  const previous = stringAttributes(record)
  const ids = settlement.idsOf(record)
  const message = deadLetterMessage(
    record.body,
    {
      stage: settlement.stage,
      // Kept and shown by `npm run dlq`: paths and quoted ids keyed (lib/user-key.ts).
      reason: textForLog(fate.reason),
      status: fate.status,
      courierType: fate.courierType,
      // A body that is not an event (a truncated dead letter) still has the ids ingest recorded.
      messageId: ids.messageId ?? previous.messageId,
      type: ids.type ?? previous.type,
      previous,
    },
    settlement.batchMaxBytes,
    { group: ids.group, deduplicationId: fifoId(DEDUPLICATION_PREFIX[settlement.stage], record.messageId) },
  )
  const send = (dead: typeof message) =>
    settlement.sqs.send(
      new SendMessageCommand({
        QueueUrl: settlement.dlqUrl,
        MessageBody: dead.body,
        MessageAttributes: toSqsAttributes(dead.attributes),
        ...fifoFields(dead, settlement.fifo),
      }),
    )
  try {
    await send(message)
  } catch (error) {
    // SQS refused the message for what it holds (a client fault: an attribute it will not take).
    // Sending it again unchanged would fail forever, so it goes once more with plain ASCII
    // attributes; any other failure (throttling, network) keeps the record queued.
    if (!isSenderFault(error)) throw error
    await send(plainDeadLetter(message, `${(error as Error).name}: ${(error as Error).message}`))
  }
}

/** A retry given up on (too old, too many receives, an exception that recurs) becomes a dead letter. */
const givenUp = (record: SQSRecord, fate: Fate, limits: GiveUpLimits, now: number): Settled => {
  if (fate.action !== 'retry') return fate
  const reason = giveUpReason(record, receiveCountOf(record), limits, fate, now)
  if (reason === undefined) return fate
  return {
    action: 'dead-letter',
    reason,
    status: fate.status,
    courierType: fate.courierType,
    changed: 'given-up',
  }
}

/**
 * Ends the batch: gives up on the retries that may not go on, sends every dead letter (in
 * parallel), sets each retry's visibility to its delay (capped at SQS's 12 hours from the
 * receive) and returns the records to retry as `batchItemFailures`, with each record's final fate.
 * A record without a fate was not attempted: it comes back in UNSTARTED_DELAY_SECONDS.
 */
export const settleBatch = async (
  settlement: BatchSettlement,
  records: readonly SQSRecord[],
  fates: ReadonlyMap<SQSRecord, Fate>,
): Promise<{ readonly response: SQSBatchResponse; readonly settled: ReadonlyMap<SQSRecord, Settled> }> => {
  const now = Date.now()
  const settled = new Map<SQSRecord, Settled>()
  const sends: Promise<void>[] = []
  for (const record of records) {
    const fate = givenUp(
      record,
      fates.get(record) ?? { action: 'retry', delaySeconds: UNSTARTED_DELAY_SECONDS, reason: NOT_STARTED },
      settlement.limits,
      now,
    )
    settled.set(record, fate)
    if (fate.action !== 'dead-letter') continue
    sends.push(
      sendDeadLetter(settlement, record, fate).catch((error: unknown) => {
        // The DLQ did not take it: keep the record on the queue rather than lose it.
        settlement.logger.warn('dead-lettering failed; the record stays queued', {
          sqsMessageId: record.messageId,
          error: error as Error,
        })
        settled.set(record, {
          action: 'retry',
          delaySeconds: settlement.retryBaseSeconds,
          reason: `dead-lettering failed: ${String(error)} (${fate.reason})`,
          changed: 'not-dead-lettered',
        })
      }),
    )
  }
  await Promise.all(sends)
  const changes: VisibilityChange[] = []
  for (const record of records) {
    const fate = settled.get(record) as Settled
    if (fate.action === 'retry') {
      changes.push({ receiptHandle: record.receiptHandle, id: record.messageId, seconds: fate.delaySeconds })
    }
  }
  // Each delay capped at what is left of the 12 hours SQS allows from the receive (the event
  // source may gather a batch for a while before invoking).
  await changeVisibility(settlement.sqs, settlement.queueUrl, changes, settlement.logger, {
    receivedAtMs: earliestReceive(settlement.invokedAt),
  })
  return {
    response: { batchItemFailures: changes.map((change) => ({ itemIdentifier: change.id })) },
    settled,
  }
}
