import type { SQSRecord } from 'aws-lambda'
import type { Config } from '../config.ts'
import { QUEUE_SETTINGS } from './settings.ts'

/**
 * When a function stops retrying a record and dead-letters it itself, with the reason, so that
 * nothing is ever lost without a trace:
 *
 * - **age**: SQS deletes a message unseen once it is older than the queue's retention (14 days at
 *   most), and a record retried through a long 429 storm (Retry-After up to an hour) or a wrong
 *   token can outlive it. Past MAX_EVENT_AGE_SECONDS (from the queue's own SentTimestamp) a record
 *   that fails again goes to the DLQ, where it is a new message with 14 days of its own.
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-basic-architecture.html
 * - **receives**: on the receive after maxReceiveCount SQS moves the message to the DLQ itself,
 *   without a reason, and a standard DLQ keeps the message's original enqueue time, so it can
 *   expire there early. On its last allowed receive the function dead-letters it instead.
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
 * - **an exception that recurs**: a record whose handling threw (a bug, or input no rule foresaw)
 *   will throw the same way on every receive; retried to maxReceiveCount it would block its user's
 *   FIFO group for days. Once it has thrown on its EXCEPTION_RECEIVES-th receive it is
 *   dead-lettered with the error, to be redriven once the cause is fixed. A few receives still
 *   ride out an exception that was in fact transient.
 */

/** The receive on which a record that throws again is given up on. */
export const EXCEPTION_RECEIVES = 3

export interface GiveUpLimits {
  readonly maxEventAgeSeconds: number
  readonly maxReceiveCount: number
  readonly exceptionReceives: number
}

/** The limits from the configuration and the queue's maxReceiveCount (default: the deployed one). */
export const giveUpLimits = (
  retry: Pick<Config['retry'], 'maxEventAgeSeconds'>,
  maxReceiveCount: number = QUEUE_SETTINGS.maxReceiveCount,
): GiveUpLimits => ({
  maxEventAgeSeconds: retry.maxEventAgeSeconds,
  maxReceiveCount,
  exceptionReceives: Math.min(EXCEPTION_RECEIVES, maxReceiveCount),
})

/** Seconds since SQS took the message (SentTimestamp, epoch ms); 0 when the record lacks it. */
export const ageSeconds = (record: SQSRecord, nowMs: number): number => {
  const sent = Number(record.attributes.SentTimestamp)
  return Number.isFinite(sent) && sent > 0 ? Math.max(0, (nowMs - sent) / 1000) : 0
}

/** How many times SQS has handed this message out, this receive included (ApproximateReceiveCount; 1 when absent). */
export const receiveCountOf = (record: SQSRecord): number =>
  Math.max(1, Number(record.attributes.ApproximateReceiveCount) || 1)

/** Pure: "42 s", "3.5 h", "12.0 days". */
export const formatDuration = (seconds: number): string => {
  if (seconds < 3_600) return `${Math.round(seconds)} s`
  if (seconds < 2 * 86_400) return `${(seconds / 3_600).toFixed(1)} h`
  return `${(seconds / 86_400).toFixed(1)} days`
}

/** What happened on this attempt: why it failed, and whether by an exception. */
export interface LastFailure {
  readonly reason?: string | undefined
  readonly exception?: boolean | undefined
}

/**
 * Pure: why a record that is about to be retried must be dead-lettered instead, or undefined
 * when it may be retried.
 */
export const giveUpReason = (
  record: SQSRecord,
  receiveCount: number,
  limits: GiveUpLimits,
  last: LastFailure,
  nowMs: number,
): string | undefined => {
  const age = ageSeconds(record, nowMs)
  const lastPart = `; last: ${last.reason ?? 'unknown'}`
  if (age >= limits.maxEventAgeSeconds) {
    return `expired after ${formatDuration(age)} of retries (MAX_EVENT_AGE_SECONDS ${limits.maxEventAgeSeconds})${lastPart}`
  }
  if (receiveCount >= limits.maxReceiveCount) {
    return `gave up after ${receiveCount} receives over ${formatDuration(age)} (maxReceiveCount ${limits.maxReceiveCount})${lastPart}`
  }
  if (last.exception === true && receiveCount >= limits.exceptionReceives) {
    return `failed with an exception on ${receiveCount} receives: it will fail again until the cause is fixed, then redrive it${lastPart}`
  }
  return undefined
}
