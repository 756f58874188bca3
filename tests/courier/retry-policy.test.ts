import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../lib/config.ts'
import { decide } from '../../lib/courier/retry-policy.ts'

const retry = parseConfig({ QUEUE_URL: 'http://q/1/q', DLQ_URL: 'http://q/1/d' }).retry
const mid = () => 0.5

describe('retry policy (the table in lib/courier/retry-policy.ts)', () => {
  it.each([202, 200, 409])('deletes a delivered record (%i)', (status) => {
    expect(decide({ kind: 'delivered', status }, 1, retry, mid)).toEqual({ action: 'delete' })
  })

  it('waits for the Retry-After of a transient answer (capped), without holding the batch', () => {
    const outcome = { kind: 'transient', status: 503, reason: 'HTTP 503', retryAfterSeconds: 42.5 } as const
    expect(decide(outcome, 1, retry, () => 1)).toEqual({
      action: 'retry',
      delaySeconds: 43,
      holdBatch: false,
    })
    const huge = { ...outcome, retryAfterSeconds: 10 ** 6 }
    expect(decide(huge, 1, retry, mid)).toMatchObject({ delaySeconds: retry.retryAfterMaxSeconds })
  })

  it('holds the batch for Retry-After on a 429, capped', () => {
    const outcome = { kind: 'rate-limited', status: 429, retryAfterSeconds: 12.2 } as const
    expect(decide(outcome, 1, retry, mid)).toEqual({ action: 'retry', delaySeconds: 13, holdBatch: true })
    const huge = { ...outcome, retryAfterSeconds: 10 ** 6 }
    expect(decide(huge, 1, retry, mid)).toMatchObject({ delaySeconds: retry.retryAfterMaxSeconds })
  })

  it('honours a short Retry-After for the first receives, then backs off so a long storm cannot exhaust the receives', () => {
    const outcome = { kind: 'rate-limited', status: 429, retryAfterSeconds: 1 } as const
    const delay = (receiveCount: number) => {
      const decision = decide(outcome, receiveCount, retry, () => 1)
      return decision.action === 'retry' ? decision.delaySeconds : -1
    }
    expect([1, 5, 10].map(delay)).toEqual([1, 1, 1])
    expect([11, 12, 13, 30].map(delay)).toEqual([10, 20, 40, 900])
    // 1000 receives of a 1 s Retry-After storm now span far more than 24 h, even at the mean wait
    const meanSeconds = Array.from({ length: 1_000 }, (_, i) => {
      const d = decide(outcome, i + 1, retry, () => 0.5)
      return d.action === 'retry' ? d.delaySeconds : 0
    }).reduce((sum, d) => sum + d, 0)
    expect(meanSeconds).toBeGreaterThan(24 * 3_600)
  })

  it('waits at least RATE_LIMIT_DELAY_SECONDS (±20%) on a 429 without Retry-After, growing with receives', () => {
    const outcome = { kind: 'rate-limited', status: 429, retryAfterSeconds: undefined } as const
    const early = decide(outcome, 1, retry, () => 0)
    const late = decide(outcome, 30, retry, () => 1)
    expect(early).toEqual({ action: 'retry', delaySeconds: 48, holdBatch: true })
    expect(late).toEqual({ action: 'retry', delaySeconds: 1_080, holdBatch: true })
  })

  it('without Retry-After holds the batch for the wait the cut rate implies, capped by RATE_LIMIT_DELAY_SECONDS', () => {
    const outcome = { kind: 'rate-limited', status: 429, retryAfterSeconds: undefined } as const
    const delay = (receiveCount: number, holdSeconds: number) => {
      const decision = decide(outcome, receiveCount, retry, () => 1, holdSeconds)
      return decision.action === 'retry' && decision.holdBatch ? decision.delaySeconds : -1
    }
    expect([delay(1, 1), delay(1, 2.2), delay(10, 15)]).toEqual([1, 3, 15])
    expect(delay(1, 10_000)).toBe(retry.rateLimitDelaySeconds)
    // past the first receives the backoff is the floor, as for a short Retry-After
    expect([11, 12, 30].map((n) => delay(n, 1))).toEqual([10, 20, 900])
  })

  it('backs off exponentially from the receive count on transient failures', () => {
    const outcome = { kind: 'transient', status: 503, reason: 'HTTP 503' } as const
    const delays = [1, 2, 3, 4, 5, 12].map((n) => decide(outcome, n, retry, () => 1))
    expect(delays.map((d) => (d.action === 'retry' ? d.delaySeconds : -1))).toEqual([
      10, 20, 40, 80, 160, 900,
    ])
    expect(delays.every((d) => d.action === 'retry' && !d.holdBatch)).toBe(true)
  })

  it('retries bad credentials slowly and never dead-letters them', () => {
    for (const status of [401, 403] as const) {
      const decision = decide({ kind: 'auth', status, reason: 'Unauthorized' }, 500, retry, mid)
      expect(decision).toEqual({
        action: 'retry',
        delaySeconds: retry.authErrorDelaySeconds,
        holdBatch: false,
      })
    }
  })

  it.each([400, 404, 413, 422, 501])('dead-letters a permanent failure (%i) with its reason', (status) => {
    expect(decide({ kind: 'permanent', status, reason: 'bad' }, 1, retry, mid)).toEqual({
      action: 'dead-letter',
      reason: 'bad',
      status,
    })
  })
})
