import { describe, expect, it } from 'vitest'
import { backoffCeiling, fullJitterBackoffMs, jitteredSeconds, retryDelaySeconds } from '../lib/backoff.ts'

describe('backoff', () => {
  it('doubles from the base up to the cap', () => {
    expect([1, 2, 3, 4, 8, 9, 60].map((n) => backoffCeiling(n, 10, 900))).toEqual([
      10, 20, 40, 80, 900, 900, 900,
    ])
  })

  it('full jitter stays within [0, ceiling]', () => {
    expect(fullJitterBackoffMs(3, 50, 1_000, () => 0)).toBe(0)
    expect(fullJitterBackoffMs(3, 50, 1_000, () => 0.999)).toBe(199)
  })

  it('a retry delay is never shorter than half the base and never longer than the ceiling', () => {
    expect(retryDelaySeconds(1, 10, 900, () => 0)).toBe(5)
    expect(retryDelaySeconds(20, 10, 900, () => 1)).toBe(900)
    expect(retryDelaySeconds(4, 10, 900, () => 0.5)).toBe(40)
  })

  it('jitters fixed delays by ±20%', () => {
    expect(jitteredSeconds(60, () => 0)).toBe(48)
    expect(jitteredSeconds(60, () => 1)).toBe(72)
  })
})
