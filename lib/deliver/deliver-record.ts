import type { Logger } from '@aws-lambda-powertools/logger'
import type { Metrics } from '@aws-lambda-powertools/metrics'
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs'
import type { SQSRecord } from 'aws-lambda'
import type { Random } from '../backoff.ts'
import { listChangeOf } from '../courier/list-change.ts'
import { decide } from '../courier/retry-policy.ts'
import { receiveCountOf } from '../queue/expiry.ts'
import { NOT_STARTED, UNSTARTED_DELAY_SECONDS } from '../queue/settle-batch.ts'
import type { SegmentEvent } from '../segment/event.ts'
import { addMetric } from '../telemetry.ts'
import { type CallDeps, sendEvent } from './courier-calls.ts'
import type { ParsedRecord } from './records.ts'

/**
 * One record through Courier: what its answers make of it. Pure of the batch: the FIFO order
 * and the batch's end are schedule.ts's and batch.ts's.
 */

export interface RecordDeps extends CallDeps {
  readonly sqs: SQSClient
  readonly logger: Logger
  readonly metrics?: Metrics | undefined
  readonly random?: Random | undefined
}

/** A record that comes back: its delay is its own, or (held back) the batch's 429's. */
export type RetryOutcome = 'retried' | 'rate-limited' | 'held-back' | 'waiting'

export type RecordOutcome = 'delivered' | 'skipped' | 'dead-lettered' | RetryOutcome

export type RecordResult =
  | { readonly outcome: 'delivered'; readonly event: SegmentEvent; readonly status?: number | undefined }
  | { readonly outcome: 'skipped'; readonly event: SegmentEvent; readonly reason: string }
  | {
      readonly outcome: 'dead-lettered'
      readonly event?: SegmentEvent | undefined
      readonly reason: string
      readonly status?: number | undefined
      readonly courierType?: string | undefined
    }
  | {
      readonly outcome: 'retried' | 'rate-limited'
      readonly event?: SegmentEvent | undefined
      readonly delaySeconds: number
      readonly reason?: string | undefined
      readonly status?: number | undefined
      readonly courierType?: string | undefined
      /** Courier answered 429: the batch's unsent records are held back too. */
      readonly holdBatch?: boolean
      /** It threw: expected to throw again (lib/queue/expiry.ts). */
      readonly exception?: boolean
    }
  /** Not sent: the batch met a 429 while it waited its turn; its delay is known at the batch's end. */
  | { readonly outcome: 'held-back'; readonly event?: SegmentEvent | undefined }
  /** Not attempted: an earlier record of the same user comes back (the FIFO rule), and this one with it. */
  | { readonly outcome: 'waiting'; readonly behind: RecordResult & { outcome: RetryOutcome } }

export const isRetry = (result: RecordResult): result is RecordResult & { outcome: RetryOutcome } =>
  result.outcome === 'retried' ||
  result.outcome === 'rate-limited' ||
  result.outcome === 'held-back' ||
  result.outcome === 'waiting'

export const HELD_BACK = 'held back: Courier rate-limited this batch'

const latencyMs = (event: SegmentEvent): number | undefined => {
  const since = Date.parse(event.receivedAt ?? event.timestamp ?? '')
  return Number.isFinite(since) ? Math.max(0, Date.now() - since) : undefined
}

/**
 * An Engage audience event (or a user deletion), once its Courier part is delivered, is handed to
 * the audience queue for the list sync (lib/audiences/list-sync.ts): the list write never sits in
 * this user's ordered path, which takes one SendMessage of a few milliseconds. Returns why the
 * hand-over failed, or undefined when it was done or not needed.
 */
const forwardListChange = async (
  deps: RecordDeps,
  event: SegmentEvent,
  rawEvent: string,
): Promise<string | undefined> => {
  const queueUrl = deps.config.queue.audienceUrl
  if (!deps.config.courier.audienceLists || queueUrl === undefined) return undefined
  if (listChangeOf(event) === undefined) return undefined
  try {
    await deps.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: rawEvent }))
    return undefined
  } catch (error) {
    return `handing the audience change to the audience queue failed: ${String(error)}`
  }
}

export const deliverRecord = async (
  deps: RecordDeps,
  record: SQSRecord,
  parsed: ParsedRecord,
  deadline: number,
  held: AbortSignal,
): Promise<RecordResult> => {
  if ('error' in parsed) return { outcome: 'dead-lettered', reason: parsed.error, status: 0 }
  const { event } = parsed
  const sent = await sendEvent(deps, event, parsed.ids, record.body, deadline, held)
  if ('skipped' in sent) return { outcome: 'skipped', event, reason: sent.skipped }
  if ('unsent' in sent) {
    return sent.unsent === 'held'
      ? { outcome: 'held-back', event }
      : { outcome: 'retried', event, delaySeconds: UNSTARTED_DELAY_SECONDS, reason: NOT_STARTED }
  }
  const status = sent.outcome.status
  const decision = decide(
    sent.outcome,
    receiveCountOf(record),
    deps.config.retry,
    deps.random,
    sent.holdBackSeconds,
  )
  if (sent.outcome.kind === 'delivered') {
    addMetric(deps.metrics, 'DeliveryLatency', latencyMs(event) ?? 0)
  }
  if (sent.outcome.kind === 'auth') {
    deps.logger.error('Courier refused the auth token: check COURIER_AUTH_TOKEN; the event stays queued', {
      error: sent.error,
    })
  }
  switch (decision.action) {
    case 'retry':
      return {
        outcome: decision.holdBatch ? 'rate-limited' : 'retried',
        event,
        delaySeconds: decision.delaySeconds,
        holdBatch: decision.holdBatch,
        status,
        reason: sent.error?.message,
        courierType: sent.error?.courierType,
      }
    case 'dead-letter':
      // Sent to the DLQ when the batch ends, with the other dead letters.
      return {
        outcome: 'dead-lettered',
        event,
        status: decision.status,
        reason: decision.reason,
        courierType: sent.error?.courierType,
      }
    case 'delete': {
      const forwarded = await forwardListChange(deps, event, record.body)
      // The profile has the trait; the list change did not reach its queue. Retrying the record
      // repeats only the inbound call, which Courier dedupes on messageId.
      if (forwarded !== undefined) {
        return {
          outcome: 'retried',
          event,
          delaySeconds: deps.config.retry.baseSeconds,
          status,
          reason: forwarded,
        }
      }
      return { outcome: 'delivered', event, status }
    }
  }
}
