import { jitteredSeconds, type Random, retryDelaySeconds } from '../backoff.ts'
import type { Config } from '../config.ts'
import type { Outcome } from './outcome.ts'

/**
 * The retry and failure policy as one pure function: what a function does with a
 * record given Courier's answer and how many times SQS has handed the record out.
 *
 * | Courier answer                 | action                                                    |
 * | 2xx, 409 on /inbound (duplicate) | delete                                                  |
 * | 429                            | hold it and the rest of the batch: Retry-After, else the cut rate's interval |
 * | 408, 409 elsewhere, 5xx ≠ 501, timeout, reset | retry after full-jitter backoff from the receive count, or the answer's Retry-After |
 * | x-should-retry: true / false   | Courier's verdict, already folded into the outcome (classifyStatus) |
 * | 401, 403                       | retry slowly, never drop (a config mistake)                |
 * | 400, 404, 413, 422, 501        | dead-letter at once with status and reason                 |
 */

/** Receives for which a Retry-After, however short, is followed exactly. */
export const RETRY_AFTER_HONOURED_RECEIVES = 10

export type Decision =
  | { readonly action: 'delete' }
  | { readonly action: 'retry'; readonly delaySeconds: number; readonly holdBatch: boolean }
  | { readonly action: 'dead-letter'; readonly reason: string; readonly status: number }

/**
 * A short Retry-After is honoured for the first receives; past them the backoff becomes a floor,
 * so a storm of "retry after 1 s" cannot use up maxReceiveCount in minutes and push events into
 * the DLQ: the retry window stays days long whatever Courier says. Capped at
 * RETRY_AFTER_MAX_SECONDS.
 */
const honouredRetryAfter = (
  retryAfterSeconds: number,
  receiveCount: number,
  retry: Config['retry'],
  random: Random,
): number => {
  const retryAfter = Math.min(retry.retryAfterMaxSeconds, Math.max(1, Math.ceil(retryAfterSeconds)))
  const floor =
    receiveCount > RETRY_AFTER_HONOURED_RECEIVES
      ? retryDelaySeconds(
          receiveCount - RETRY_AFTER_HONOURED_RECEIVES,
          retry.baseSeconds,
          retry.maxSeconds,
          random,
        )
      : 0
  return Math.max(retryAfter, floor)
}

export const decide = (
  outcome: Outcome,
  receiveCount: number,
  retry: Config['retry'],
  random: Random = Math.random,
  /** After a 429 without Retry-After: the wait the class's cut rate implies (Pacer.holdBackSeconds). */
  rateLimitHoldSeconds?: number,
): Decision => {
  switch (outcome.kind) {
    case 'delivered':
      return { action: 'delete' }
    case 'rate-limited': {
      // Courier's own word on when to come back wins (capped). Without it the records wait what
      // the class's cut rate implies (seconds: the rate, not the wait, keeps the 429s rare), at
      // most RATE_LIMIT_DELAY_SECONDS; with no rate to go by, RATE_LIMIT_DELAY_SECONDS ±20%.
      if (outcome.retryAfterSeconds === undefined && rateLimitHoldSeconds === undefined) {
        const backoff = retryDelaySeconds(receiveCount, retry.baseSeconds, retry.maxSeconds, random)
        return {
          action: 'retry',
          delaySeconds: jitteredSeconds(Math.max(retry.rateLimitDelaySeconds, backoff), random),
          holdBatch: true,
        }
      }
      // The cut rate's wait is treated as Courier's own short Retry-After would be.
      const wait =
        outcome.retryAfterSeconds ?? Math.min(retry.rateLimitDelaySeconds, rateLimitHoldSeconds ?? 1)
      return {
        action: 'retry',
        delaySeconds: honouredRetryAfter(wait, receiveCount, retry, random),
        holdBatch: true,
      }
    }
    case 'transient':
      // Courier's SDKs wait for retry-after-ms / Retry-After on any retried answer (courier-node
      // src/client.ts retryRequest); without one, the backoff.
      return {
        action: 'retry',
        delaySeconds:
          outcome.retryAfterSeconds === undefined
            ? retryDelaySeconds(receiveCount, retry.baseSeconds, retry.maxSeconds, random)
            : honouredRetryAfter(outcome.retryAfterSeconds, receiveCount, retry, random),
        holdBatch: false,
      }
    case 'auth':
      return {
        action: 'retry',
        delaySeconds: jitteredSeconds(retry.authErrorDelaySeconds, random),
        holdBatch: false,
      }
    case 'permanent':
      return { action: 'dead-letter', reason: outcome.reason, status: outcome.status }
  }
}
