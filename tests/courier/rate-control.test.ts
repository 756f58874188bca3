import { describe, expect, it } from 'vitest'
import { COLD_START_RPS, LISTS_PUBLISHED_RPS, rateParamsFor } from '../../lib/courier/pacer.ts'
import {
  CUBIC_DEFAULTS,
  cubicRate,
  initialRateState,
  nextRateState,
  plateauSeconds,
  type RateControlParams,
  type RateFeedback,
  type RateState,
  rateAfter,
  seededRateState,
} from '../../lib/courier/rate-control.ts'
import { fixedWindow, simulateFleet, tokenBucket } from '../support/rate-fleet.ts'

/** The controller once engaged: slow start from 1 request/s (the open start is tested apart). */
const inbound = rateParamsFor('inbound', { maxRps: undefined, instances: 1, coldStart: 'slow-start' })
const open = rateParamsFor('inbound', { maxRps: undefined, instances: 1 })
const beta = CUBIC_DEFAULTS.decrease

const ok = (at: number, saturated = true): RateFeedback => ({ kind: 'success', sentAt: at, at, saturated })
const refused = (sentAt: number, at = sentAt): RateFeedback => ({ kind: 'rate-limited', sentAt, at })
const replay = (feedback: readonly RateFeedback[], params: RateControlParams = inbound, from?: RateState) =>
  feedback.reduce((state, f) => nextRateState(state, f, params), from ?? initialRateState(params))

/** A state that has learnt a limit: refused at `rate` at time 0. */
const learnt = (rate: number): RateState =>
  replay([refused(0)], inbound, { ...initialRateState(inbound), rate })

describe('a cold instance on a class without a known limit: open until Courier pushes back', () => {
  it('starts open: no rate to pace at, and successes, timeouts and 5xx leave it open', () => {
    // Prepare
    const cold = initialRateState(open)

    // Act
    const after = replay([ok(0), ok(10, false), { kind: 'timeout', sentAt: 20, at: 5_020 }, ok(30)], open)

    // Assess
    expect(cold.open).toBe(true)
    expect(after).toEqual(cold)
  })

  it('engages at the first 429: the rate sent over the last second is the rate refused at', () => {
    // Prepare: 40 requests started in the second before the refusal
    const refusal: RateFeedback = { kind: 'rate-limited', sentAt: 900, at: 1_000, sentRate: 40 }

    // Act
    const engaged = nextRateState(initialRateState(open), refusal, open)

    // Assess: cut by β from there, the learnt limit just under it, and paced from now on
    expect(engaged.open).toBe(false)
    expect(engaged.rate).toBeCloseTo(40 * beta, 9)
    expect(engaged.wMax).toBeCloseTo(40 * CUBIC_DEFAULTS.headroom, 9)
    expect(engaged.lastDecreaseAt).toBe(1_000)
    expect(nextRateState(engaged, ok(1_100), open).open).toBe(false)
  })

  it('engages no lower than one unit when the refusal came first (nothing else sent that second)', () => {
    const engaged = nextRateState(
      initialRateState(open),
      { kind: 'rate-limited', sentAt: 0, at: 5, sentRate: 1 },
      open,
    )

    expect(engaged.rate).toBeCloseTo(COLD_START_RPS * beta, 9)
  })

  it('never opens a class with a published or configured limit: lists and COURIER_MAX_RPS pace from the start', () => {
    expect(initialRateState(rateParamsFor('lists', { maxRps: undefined, instances: 5 })).open).toBe(false)
    expect(initialRateState(rateParamsFor('inbound', { maxRps: 50, instances: 5 })).open).toBe(false)
  })

  it('seeds a replacement from the rate the fleet learnt: paced at about it, three quarters into a cycle', () => {
    const seeded = seededRateState(open, 12, 60_000)

    expect(seeded.open).toBe(false)
    expect(seeded.wMax).toBe(12)
    expect(seeded.rate).toBeLessThan(12 * 1.01)
    expect(seeded.rate).toBeGreaterThan(12 * 0.99)
    expect(60_000 - seeded.lastDecreaseAt).toBeCloseTo((plateauSeconds(open, 12) * 3_000) / 4, 6)
  })
})

describe('rate control (CUBIC on the request rate): the algorithm as a pure function', () => {
  it('starts a cold instance at 1 request/s and grows it by one per success while requests wait their turn', () => {
    const rates = rateAfter(
      Array.from({ length: 6 }, (_, i) => ok(i * 100)),
      inbound,
    )

    expect(initialRateState(inbound).rate).toBe(COLD_START_RPS)
    expect(rates).toEqual([2, 3, 4, 5, 6, 7])
  })

  it('does not grow on successes that did not wait (an instance with little to send learns nothing)', () => {
    expect(rateAfter([ok(0, false), ok(10, false), ok(20, false)], inbound)).toEqual([1, 1, 1])
  })

  it('cuts the rate by β on a 429 and remembers, just under it, the rate it was refused at', () => {
    const state = learnt(40)

    expect(state.rate).toBeCloseTo(40 * beta, 9)
    expect(state.wMax).toBeCloseTo(40 * CUBIC_DEFAULTS.headroom, 9)
  })

  it('ignores a 429 for a request sent before the last cut: the same congestion, already answered', () => {
    const cut = replay([refused(1_000)], inbound, { ...initialRateState(inbound), rate: 40 })

    const again = nextRateState(cut, refused(900, 1_010), inbound)

    expect(again).toEqual(cut)
  })

  it('stops cutting within a spent window at about a third of the learnt limit: it says nothing more', () => {
    const cut = replay([refused(1_000)], inbound, { ...initialRateState(inbound), rate: 40 })

    // every request refused for the rest of a one-second window
    const spent = replay(
      Array.from({ length: 30 }, (_, i) => refused(1_100 + i * 30)),
      inbound,
      cut,
    )

    expect(spent.rate).toBeCloseTo((cut.wMax as number) * beta ** 4, 9)
    expect(spent.wMax).toBe(cut.wMax)
  })

  it('goes on cutting to the floor when refusals outlast a spent window: a storm is not met at a third of the rate', () => {
    const cut = replay([refused(1_000)], inbound, { ...initialRateState(inbound), rate: 40 })
    const storm = Array.from({ length: 40 }, (_, i) => refused(1_100 + i * 100))

    const after = replay(storm, inbound, cut)
    const withinWindow = replay(storm.slice(0, 9), inbound, cut)

    expect(withinWindow.rate).toBeCloseTo((cut.wMax as number) * beta ** 4, 9)
    expect(after.rate).toBe(inbound.minRate)
    expect(after.wMax).toBe(cut.wMax)
    // the learnt limit is kept: once Courier answers again the cubic climbs back to it
    const recovered = replay(
      Array.from({ length: 60 }, (_, i) => ok(6_000 + i * 100)),
      inbound,
      after,
    )
    expect(recovered.rate).toBeGreaterThan((cut.wMax as number) * beta)
  })

  it('cuts again when still refused after the cut, but keeps the limit it learnt first', () => {
    const cut = replay([refused(1_000)], inbound, { ...initialRateState(inbound), rate: 40 })

    const still = nextRateState(cut, refused(1_100, 1_105), inbound)

    expect(still.rate).toBeCloseTo(40 * beta * beta, 9)
    expect(still.wMax).toBe(cut.wMax)
  })

  it('lowers the learnt limit further when refused below it (RFC 9438 fast convergence)', () => {
    const first = learnt(40)
    // a success after the cut ends the episode; then a refusal at a rate under wMax
    const recovered = replay([ok(2_000)], inbound, first)
    const below = nextRateState(recovered, refused(3_000), inbound)

    expect(recovered.rate).toBeLessThan(first.wMax as number)
    expect(below.wMax).toBeCloseTo(recovered.rate * ((1 + beta) / 2) * CUBIC_DEFAULTS.headroom, 9)
  })

  it('returns to the learnt limit within K seconds, stays near it, then probes above it', () => {
    const wMax = 40
    const k = plateauSeconds(inbound)
    const at = (seconds: number) => cubicRate(wMax, seconds, inbound)

    expect(at(0)).toBeCloseTo(wMax * beta, 6)
    expect(at(k / 2)).toBeLessThan(wMax)
    expect(at(k / 2)).toBeGreaterThan(wMax * 0.95)
    expect(Math.abs(at(k) - wMax)).toBeLessThan(0.01 * wMax)
    expect(at(k + 1)).toBeLessThan(wMax * 1.03)
    expect(at(k + 10)).toBeGreaterThan(wMax * 4)
  })

  it('stretches the cycle at a low rate so that it carries at least plateauRequests requests, and only there', () => {
    const k = plateauSeconds(inbound)
    const slow = 4 // a limit of 20 requests/s split over 5 instances
    // the cubic part alone (the additive term α × t comes on top at any rate)
    const at = (seconds: number) =>
      cubicRate(slow, seconds, inbound) - inbound.additive * inbound.unit * seconds

    expect(inbound.plateauRequests).toBeGreaterThan(k * slow)
    expect(plateauSeconds(inbound, slow)).toBeCloseTo(inbound.plateauRequests / slow, 9)
    expect(plateauSeconds(inbound, 40)).toBe(k)
    // the same curve, stretched: from β × wMax back to wMax at the longer K, still under it at the short one
    expect(at(0)).toBeCloseTo(slow * beta, 6)
    expect(at(k)).toBeLessThan(slow * 0.99)
    expect(at(inbound.plateauRequests / slow)).toBeCloseTo(slow, 9)
  })

  it('bounds the stretch: 429s that are no limit (every tenth request refused) do not sink a slow instance', () => {
    const lists = rateParamsFor('lists', { maxRps: undefined, instances: 5 })
    // one instance pacing itself, every tenth request refused whatever the rate
    let state: RateState = { ...initialRateState(inbound), rate: 5 }
    let at = 0
    const settled: number[] = []
    for (let i = 0; i < 2_000; i++) {
      at += 1_000 / state.rate
      state = nextRateState(state, i % 10 === 9 ? refused(at, at + 5) : ok(at + 5), inbound)
      if (at > 120_000) settled.push(state.rate)
    }

    expect(plateauSeconds(inbound, 1)).toBeCloseTo(inbound.longestPlateau * plateauSeconds(inbound), 9)
    expect(plateauSeconds(lists, LISTS_PUBLISHED_RPS / 5)).toBeCloseTo(
      lists.longestPlateau * plateauSeconds(lists),
      9,
    )
    // near 1 / (p × K): 1.3/s here; unbounded (K = 50 s at 1/s) it sank to 0.9/s
    expect(settled.reduce((sum, rate) => sum + rate, 0) / settled.length).toBeGreaterThan(1.2)
  })

  it('follows the cubic on saturated successes after a cut, a step of at most one unit per success', () => {
    const cut = learnt(40)
    const k = plateauSeconds(inbound) * 1_000

    const atK = replay(
      Array.from({ length: 40 }, (_, i) => ok(k + i)),
      inbound,
      cut,
    )

    expect(atK.rate).toBeCloseTo(cubicRate(cut.wMax as number, (k + 39) / 1_000, inbound), 6)
    expect(replay([ok(k)], inbound, cut).rate).toBeCloseTo(cut.rate + CUBIC_DEFAULTS.slowStartGain, 9)
  })

  it('takes a timeout as congestion: the rate is cut, the limit learnt from 429s is kept', () => {
    const cut = replay([ok(3_000)], inbound, learnt(40))

    const timedOut = nextRateState(cut, { kind: 'timeout', sentAt: 4_000, at: 14_000 }, inbound)

    expect(timedOut.rate).toBeCloseTo(cut.rate * beta, 9)
    expect(timedOut.wMax).toBe(cut.wMax)
  })

  it('never goes above the COURIER_MAX_RPS share nor below the floor', () => {
    const capped = rateParamsFor('inbound', { maxRps: 50, instances: 5 })
    const rates = rateAfter(
      Array.from({ length: 500 }, (_, i) => ok(i * 10)),
      capped,
    )
    // refused again and again, each time after a success ended the last episode
    const floor = rateAfter(
      Array.from({ length: 200 }, (_, i) => [refused(i * 1_000), ok(i * 1_000 + 1)]).flat(),
      capped,
    )

    expect(Math.max(...rates)).toBe(10)
    expect(rates.at(-1)).toBe(10)
    expect(Math.min(...floor)).toBeCloseTo(capped.minRate, 9)
    expect(capped.minRate).toBeGreaterThan(0)
  })

  it('starts with the limit already known: COURIER_MAX_RPS, or Courier’s published 20/min for lists, split over the instances', () => {
    const known = rateParamsFor('inbound', { maxRps: 50, instances: 5 })
    const lists = rateParamsFor('lists', { maxRps: undefined, instances: 5 })
    const listsUnderCeiling = rateParamsFor('lists', { maxRps: 0.1, instances: 5 })

    expect(initialRateState(known).rate).toBe(10)
    expect(initialRateState(lists).rate).toBeCloseTo(LISTS_PUBLISHED_RPS / 5, 9)
    expect(initialRateState(lists).wMax).toBeCloseTo(LISTS_PUBLISHED_RPS / 5, 9)
    expect(initialRateState(listsUnderCeiling).rate).toBeCloseTo(0.02, 9)
    // a list write refused once waits in minutes, not in seconds (its steps are scaled to its rate)
    expect(lists.slowStartGain).toBeLessThan(0.1)
  })
})

describe('a fleet sharing one limit, in simulated time', () => {
  it('settles near the limit with few 429s, from a cold start, under a token bucket and under a fixed window', () => {
    const params = Array.from({ length: 5 }, () =>
      rateParamsFor('inbound', { maxRps: undefined, instances: 5 }),
    )
    for (const limiter of [tokenBucket(() => 100, 10), fixedWindow(() => 100)]) {
      const run = simulateFleet({ params, limiter, seconds: 60 })

      const used = run.delivered(15_000, 60_000).reduce((sum, rate) => sum + rate, 0) / 100
      expect(used).toBeGreaterThan(0.85)
      expect(used).toBeLessThanOrEqual(1.02)
      expect(run.refusedShare(15_000, 60_000)).toBeLessThan(0.08)
    }
  })

  it('keeps 429s rare at a low limit too: 20 requests/s over 5 instances, a few requests/s each', () => {
    const params = Array.from({ length: 5 }, () =>
      rateParamsFor('inbound', { maxRps: undefined, instances: 5 }),
    )

    const run = simulateFleet({ params, limiter: fixedWindow(() => 20), seconds: 150 })

    const used = run.delivered(15_000, 150_000).reduce((sum, rate) => sum + rate, 0) / 20
    expect(used).toBeGreaterThan(0.9)
    // a cycle of a fixed 5.5 s probed every ~25 requests here: 4.6% refused in this simulation
    expect(run.refusedShare(15_000, 150_000)).toBeLessThan(0.03)
  })

  it('keeps 429s under 5% with an instance replaced every 3 s only when a replacement starts from the rate the fleet learnt', () => {
    // Prepare: 5 instances under a fixed window of 20/s; one replaced by a cold one every 3 s
    const params = Array.from({ length: 5 }, () =>
      rateParamsFor('inbound', { maxRps: undefined, instances: 5 }),
    )
    const churn = {
      params,
      limiter: fixedWindow(() => 20),
      seconds: 90,
      replaceEveryMs: 3_000,
      latencyMs: 20,
    }
    const shared = (p: RateControlParams, at: number, fleet: readonly RateState[]) => {
      const learnt = fleet.flatMap((state) => (state.wMax === undefined ? [] : [state.wMax]))
      return learnt.length === 0 ? initialRateState(p) : seededRateState(p, Math.max(...learnt), at)
    }

    // Act
    const open = simulateFleet({ ...churn, limiter: fixedWindow(() => 20) })
    const seeded = simulateFleet({ ...churn, limiter: fixedWindow(() => 20), coldState: shared })

    // Assess: open replacements blast a window the others already fill; seeded ones do not
    expect(open.refusedShare(15_000, 90_000)).toBeGreaterThan(0.2)
    expect(seeded.refusedShare(15_000, 90_000)).toBeLessThan(0.05)
    const used = seeded.delivered(15_000, 90_000).reduce((sum, rate) => sum + rate, 0) / 20
    expect(used).toBeGreaterThan(0.9)
  })

  it('converges to fair shares without talking: one instance starting at the whole limit, two cold', () => {
    // the controller's own convergence, from unequal paced starts (slow start, not open)
    const cold = rateParamsFor('inbound', { maxRps: undefined, instances: 3, coldStart: 'slow-start' })
    const params = [{ ...cold, initialRate: 30 }, cold, cold]

    const run = simulateFleet({ params, limiter: tokenBucket(() => 30, 3), seconds: 240 })

    const early = run.delivered(0, 3_000)
    const late = run.delivered(60_000, 240_000)
    expect(early[0]).toBeGreaterThan(2 * (early[1] as number))
    for (const share of late) {
      expect(share).toBeGreaterThan(10 * 0.6)
      expect(share).toBeLessThan(10 * 1.4)
    }
  })
})
