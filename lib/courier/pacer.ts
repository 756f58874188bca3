import { setTimeout as sleep } from 'node:timers/promises'
import type { EndpointClass } from './endpoint-class.ts'
import type { Outcome } from './outcome.ts'
import {
  CUBIC_DEFAULTS,
  initialRateState,
  learntLimitStale,
  nextRateState,
  type RateControlParams,
  type RateState,
  seededRateState,
} from './rate-control.ts'

/**
 * Paces the requests of one endpoint class at the rate its controller (rate-control.ts) has
 * learnt: requests start one by one, evenly spaced, in the order they asked (no bursts: a burst
 * is what trips a per-second limiter). Every answer is reported back and moves the rate.
 * One pacer per class in each deliver instance: a limited class (list writes, 20 a minute) never
 * holds back the others. `COURIER_MAX_RPS` is for the whole fleet; each instance takes an even
 * share of it as a hard ceiling (the event source's maximum concurrency caps how many instances
 * run at once).
 */

/** What the pacer hands out with a start: feedback on the request is reported with it. */
export interface PaceSlot {
  /** Epoch ms the request started. */
  readonly sentAt: number
  /** Whether it had to wait for its turn: only such requests may raise the rate (RFC 7661). */
  readonly saturated: boolean
}

export interface Pacer {
  /**
   * Resolves when the next request of this class may start; with undefined at once when `signal`
   * aborts first (the caller gave up waiting: nothing was started).
   */
  readonly acquire: (signal?: AbortSignal) => Promise<PaceSlot | undefined>
  /** Courier's answer to a request started with `slot`. */
  readonly report: (slot: PaceSlot, outcome: Outcome) => void
  /** The current rate, requests per second (the learnt limit). */
  readonly ratePerSecond: () => number
  /**
   * How long records held back by a 429 without Retry-After wait: one interval at the cut rate,
   * in whole seconds; undefined when the pacer learns nothing (RATE_LIMIT_DELAY_SECONDS applies).
   */
  readonly holdBackSeconds: () => number | undefined
}

/**
 * The pacer of each of Courier's endpoint classes (lib/courier/endpoint-class.ts), so a slow or
 * limited class (list writes: 20 a minute) never holds back the others. Callers ask for the
 * class's pacer before every request and report its answer; what stands behind it (the adaptive
 * limiter of createPacers, a fixed rate) is the caller's choice.
 */
export type PacerFor = (endpoint: EndpointClass) => Pacer

export interface Clock {
  readonly now: () => number
  readonly sleep: (ms: number) => Promise<void>
}

export const realClock: Clock = {
  now: Date.now,
  sleep: async (ms) => {
    await sleep(ms)
  },
}

export const perInstanceRate = (fleetRps: number, maxConcurrency: number): number => fleetRps / maxConcurrency

/** Courier's published limit for list writes: 20 requests a minute. https://www.courier.com/docs/reference/rate-limits */
export const LISTS_PUBLISHED_RPS = 20 / 60

/**
 * The unit of a class with no published limit (1 request/s): where it paces from in slow start,
 * and half of it is its floor.
 */
export const COLD_START_RPS = 1

/**
 * How a cold instance starts on a class without a known limit: `open-until-pushback` (the
 * default: no pacing until Courier's first 429 or Retry-After, rate-control.ts) or `slow-start`
 * (paced from COLD_START_RPS and grown while saturated: the relay before, kept for the benchmark's
 * before/after rows).
 */
export type ColdStart = 'open-until-pushback' | 'slow-start'

export interface PacerSettings {
  /** COURIER_MAX_RPS: the whole fleet's known budget, a hard ceiling. */
  readonly maxRps: number | undefined
  /** DELIVER_MAX_CONCURRENCY: how many instances share it. */
  readonly instances: number
  /** Default `open-until-pushback`. */
  readonly coldStart?: ColdStart
}

/**
 * The controller's knobs for one class in one instance. A known limit (COURIER_MAX_RPS, or the
 * lists' published 20/min) is split over the instances and paced from the start; a class without
 * one is not paced until Courier pushes back (or, with `slow-start`, starts at COLD_START_RPS).
 * The slow class's steps are scaled to its rate.
 */
export const rateParamsFor = (endpointClass: EndpointClass, settings: PacerSettings): RateControlParams => {
  const ceiling =
    settings.maxRps === undefined
      ? Number.POSITIVE_INFINITY
      : perInstanceRate(settings.maxRps, settings.instances)
  const published =
    endpointClass === 'lists' ? perInstanceRate(LISTS_PUBLISHED_RPS, settings.instances) : undefined
  const known = settings.maxRps === undefined ? published : Math.min(ceiling, published ?? ceiling)
  const unit = Math.min(COLD_START_RPS, known ?? COLD_START_RPS)
  return {
    ...CUBIC_DEFAULTS,
    initialRate: Math.min(COLD_START_RPS, ceiling),
    openUntilPushback: (settings.coldStart ?? 'open-until-pushback') === 'open-until-pushback',
    minRate: unit / 2,
    // A published limit is a ceiling too: successes under it say nothing about room above it.
    maxRate: published === undefined ? ceiling : Math.min(ceiling, published),
    knownLimit: known,
    slowStartGain: CUBIC_DEFAULTS.slowStartGain * unit,
    unit,
  }
}

/** How much of the schedule a late timer or a gap between batches may make up. */
const CATCH_UP_MS = 100

const isTimeout = (outcome: Outcome) =>
  outcome.kind === 'transient' && outcome.status === undefined && outcome.reason.startsWith('timeout')

/**
 * Courier pushing back: a 429 (even one `x-should-retry: false` made permanent: the refusal is
 * still a rate signal), or any answer that says when to come back (Retry-After or
 * retry-after-ms, which Courier's SDKs wait for on every retried answer:
 * https://github.com/trycourier/courier-node/blob/main/src/client.ts, retryRequest).
 */
export const isPushback = (outcome: Outcome): boolean =>
  outcome.status === 429 || (outcome.kind === 'transient' && outcome.retryAfterSeconds !== undefined)

/** Starts within the last second, for the rate an open start was sending at when refused. */
const SENT_RATE_WINDOW_MS = 1_000

export interface AdaptivePacerOptions {
  readonly endpointClass: EndpointClass
  readonly params: RateControlParams
  readonly clock?: Clock
  /** Told when the rate has fallen to half of where it was when last told (or its peak since). */
  readonly onHalved?: (change: { endpointClass: EndpointClass; from: number; to: number }) => void
  /**
   * The per-instance rate the rest of the fleet learnt for this class, requests/s: a class that
   * would start open starts paced just under it instead (rate-control.ts seededRateState).
   */
  readonly fleetRate?: number | undefined
  /**
   * Told the learnt limit (requests/s: wMax, or the rate Courier takes now when higher) when it
   * has moved by more than LEARNT_CHANGE of what was last told or seeded: what the fleet shares,
   * so it is never per request. `undefined` once
   * the limit told or seeded has gone stale (rate-control.ts learntLimitStale: no refusal for
   * probeAfter × K while sending), so the fleet forgets it instead of seeding cold instances low
   * for the rest of its hour.
   */
  readonly onLearnt?: (change: { endpointClass: EndpointClass; ratePerSecond: number | undefined }) => void
}

/** A learnt limit closer than this share to the last one shared is not worth telling the fleet. */
export const LEARNT_CHANGE = 0.1

export const createAdaptivePacer = (options: AdaptivePacerOptions): Pacer => {
  const { endpointClass, params } = options
  const clock = options.clock ?? realClock
  const cold = initialRateState(params)
  let state: RateState =
    cold.open && options.fleetRate !== undefined && options.fleetRate > 0
      ? seededRateState(params, options.fleetRate, clock.now())
      : cold
  let reference = state.rate
  let told = state.open ? undefined : options.fleetRate
  let lastStart = Number.NEGATIVE_INFINITY
  const waiting: { readonly arrived: number; readonly start: (slot: PaceSlot | undefined) => void }[] = []
  let pumping = false
  // While open: the start times of the last second, oldest first.
  const recentStarts: number[] = []
  const sentRate = (at: number) => {
    while (recentStarts.length > 0 && (recentStarts[0] as number) <= at - SENT_RATE_WINDOW_MS)
      recentStarts.shift()
    return recentStarts.length / (SENT_RATE_WINDOW_MS / 1_000)
  }

  // One loop hands out starts in arrival order; it re-reads the rate after every wait, so a cut
  // applies to requests already waiting.
  const pump = async () => {
    if (pumping) return
    pumping = true
    try {
      while (waiting.length > 0) {
        const interval = 1_000 / state.rate
        const now = clock.now()
        const due = lastStart + interval
        if (due > now) {
          await clock.sleep(due - now)
          continue
        }
        // A timer that fired late, or a short gap between two batches, keeps the schedule: up to
        // CATCH_UP_MS of missed starts are made up (a burst that small trips no per-second
        // limiter); after a longer idle spell the schedule restarts from now.
        lastStart = Math.max(due, now - Math.max(interval, CATCH_UP_MS))
        const next = waiting.shift() as (typeof waiting)[number]
        next.start({ sentAt: now, saturated: now > next.arrived })
      }
    } finally {
      pumping = false
    }
  }

  return {
    acquire: (signal) =>
      new Promise<PaceSlot | undefined>((start) => {
        if (signal?.aborted === true) return start(undefined)
        if (state.open) {
          // Not paced until Courier pushes back: the call starts now, bounded only by the caller's concurrency.
          const now = clock.now()
          recentStarts.push(now)
          sentRate(now)
          lastStart = now
          return start({ sentAt: now, saturated: false })
        }
        const waiter = { arrived: clock.now(), start }
        waiting.push(waiter)
        signal?.addEventListener(
          'abort',
          () => {
            const index = waiting.indexOf(waiter)
            if (index >= 0) waiting.splice(index, 1)
            start(undefined)
          },
          { once: true },
        )
        void pump()
      }),
    report: (slot, outcome) => {
      const at = clock.now()
      const before = state.rate
      if (isPushback(outcome)) {
        const engaging = state.open
        state = nextRateState(
          state,
          { kind: 'rate-limited', sentAt: slot.sentAt, at, ...(engaging ? { sentRate: sentRate(at) } : {}) },
          params,
        )
        if (engaging) recentStarts.length = 0
      } else if (isTimeout(outcome)) {
        state = nextRateState(state, { kind: 'timeout', sentAt: slot.sentAt, at }, params)
      } else {
        state = nextRateState(
          state,
          { kind: 'success', sentAt: slot.sentAt, at, saturated: slot.saturated },
          params,
        )
      }
      // What this instance knows of the limit: the rate last refused (wMax), or the rate Courier is
      // taking now when that is higher (probing above it, not refused yet). Sharing only wMax let
      // the fleet's value ratchet down under churn: a refusal below the old limit lowers wMax
      // (fast convergence), while an instance replaced every few seconds never lives long
      // enough to be refused above it.
      const learnt = state.wMax === undefined ? undefined : Math.max(state.wMax, state.rate)
      if (options.onLearnt !== undefined && params.openUntilPushback && learnt !== undefined) {
        if (learntLimitStale(state, at, params)) {
          if (told !== undefined) options.onLearnt({ endpointClass, ratePerSecond: undefined })
          told = undefined
        } else if (told === undefined || Math.abs(learnt - told) > LEARNT_CHANGE * told) {
          told = learnt
          options.onLearnt({ endpointClass, ratePerSecond: learnt })
        }
      }
      if (state.rate > reference) reference = state.rate
      if (state.rate < before && state.rate <= reference / 2) {
        options.onHalved?.({ endpointClass, from: reference, to: state.rate })
        reference = state.rate
      }
    },
    ratePerSecond: () => (state.open ? Number.POSITIVE_INFINITY : state.rate),
    holdBackSeconds: () => Math.max(1, Math.ceil(1 / state.rate)),
  }
}

/**
 * A pacer that never waits and learns nothing: the relay before it learnt Courier's limit (a 429
 * then holds the batch for RATE_LIMIT_DELAY_SECONDS). The benchmark's baseline.
 */
export const unpaced: Pacer = {
  acquire: (signal) =>
    Promise.resolve(signal?.aborted === true ? undefined : { sentAt: Date.now(), saturated: false }),
  report: () => undefined,
  ratePerSecond: () => Number.POSITIVE_INFINITY,
  holdBackSeconds: () => undefined,
}

/** A fixed rate that learns nothing: a known budget nobody else shares. */
export const createPacer = (ratePerSecond: number, clock: Clock = realClock): Pacer =>
  createAdaptivePacer({
    endpointClass: 'inbound',
    params: {
      ...CUBIC_DEFAULTS,
      initialRate: ratePerSecond,
      openUntilPushback: false,
      minRate: ratePerSecond,
      maxRate: ratePerSecond,
      knownLimit: ratePerSecond,
      unit: ratePerSecond,
    },
    clock,
  })

/**
 * One adaptive pacer per endpoint class, made on first use: what each deliver instance holds.
 * `active` lists the classes paced at a learnt or known rate (an open class has no rate to report).
 */
export const createPacers = (
  settings: PacerSettings,
  options: Pick<AdaptivePacerOptions, 'clock' | 'onHalved' | 'onLearnt'> & {
    /** The fleet's learnt rate of a class, asked when its pacer is made (on its first use). */
    readonly fleetRate?: (endpointClass: EndpointClass) => number | undefined
  } = {},
): PacerFor & { readonly active: () => readonly (readonly [EndpointClass, Pacer])[] } => {
  const pacers = new Map<EndpointClass, Pacer>()
  const { fleetRate, ...rest } = options
  const pacerFor = (endpointClass: EndpointClass) => {
    let pacer = pacers.get(endpointClass)
    if (pacer === undefined) {
      pacer = createAdaptivePacer({
        ...rest,
        endpointClass,
        params: rateParamsFor(endpointClass, settings),
        fleetRate: fleetRate?.(endpointClass),
      })
      pacers.set(endpointClass, pacer)
    }
    return pacer
  }
  return Object.assign(pacerFor, {
    active: () => [...pacers.entries()].filter(([, pacer]) => Number.isFinite(pacer.ratePerSecond())),
  })
}
