import {
  initialRateState,
  nextRateState,
  type RateControlParams,
  type RateState,
} from '../../lib/courier/rate-control.ts'

/**
 * A fleet of rate controllers sharing one rate limiter, in simulated time (1 ms steps): each
 * instance always has work (saturated), starts a request whenever its pacing interval has
 * passed (an open one, not paced yet, whenever it has fewer than `concurrency` in flight), and
 * hears the answer `latencyMs` later. `replaceEveryMs` replaces one instance after another by a
 * cold one (`coldState` of its params), as Lambda retires and starts instances. Pure and
 * deterministic: no timers, no I/O.
 */

/** A limiter on simulated time: true lets the request through, false answers 429. */
export type Limiter = (at: number) => boolean

/** A token bucket of `ratePerSecond` with room for `burst` tokens (starts full). */
export const tokenBucket = (ratePerSecond: () => number, burst: number): Limiter => {
  let tokens = burst
  let last = 0
  return (at) => {
    tokens = Math.min(burst, tokens + ((at - last) / 1_000) * ratePerSecond())
    last = at
    if (tokens < 1) return false
    tokens -= 1
    return true
  }
}

/** A fixed one-second window of `ratePerSecond` requests (the Courier sandbox's `maxRps`). */
export const fixedWindow = (ratePerSecond: () => number): Limiter => {
  let window = { second: -1, count: 0 }
  return (at) => {
    const second = Math.floor(at / 1_000)
    if (second !== window.second) window = { second, count: 0 }
    window.count++
    return window.count <= ratePerSecond()
  }
}

export interface FleetRequest {
  readonly instance: number
  readonly at: number
  readonly ok: boolean
}

export interface FleetRun {
  readonly requests: readonly FleetRequest[]
  readonly states: readonly RateState[]
  /** 2xx per second for each instance between two simulated times (ms). */
  readonly delivered: (from: number, to: number) => number[]
  /** Share of requests answered 429 between two simulated times (ms). */
  readonly refusedShare: (from: number, to: number) => number
}

export const simulateFleet = (options: {
  readonly params: readonly RateControlParams[]
  readonly limiter: Limiter
  readonly seconds: number
  readonly latencyMs?: number
  /** Calls an open instance keeps in flight (DELIVERY_CONCURRENCY; default 10). */
  readonly concurrency?: number
  /** Replace instance 0, then 1, … by a cold one every this many ms. */
  readonly replaceEveryMs?: number
  /** A replacement's first state (default: initialRateState of its params). */
  readonly coldState?: (params: RateControlParams, at: number, fleet: readonly RateState[]) => RateState
}): FleetRun => {
  const latency = options.latencyMs ?? 5
  const concurrency = options.concurrency ?? 10
  const states = options.params.map((params) => initialRateState(params))
  const nextStart = options.params.map((_, i) => i * 3)
  // Each instance's generation: answers to a retired instance's requests are not its successor's.
  const generation = options.params.map(() => 0)
  const inFlight: { instance: number; generation: number; sentAt: number; due: number; ok: boolean }[] = []
  const requests: FleetRequest[] = []
  const starts: number[][] = options.params.map(() => [])
  let replaced = 0
  for (let now = 0; now < options.seconds * 1_000; now++) {
    if (options.replaceEveryMs !== undefined && now > 0 && now % options.replaceEveryMs === 0) {
      const instance = replaced++ % states.length
      const params = options.params[instance] as RateControlParams
      states[instance] = options.coldState?.(params, now, states) ?? initialRateState(params)
      generation[instance] = (generation[instance] as number) + 1
      starts[instance] = []
      nextStart[instance] = now
    }
    for (let i = inFlight.length - 1; i >= 0; i--) {
      const answer = inFlight[i] as (typeof inFlight)[number]
      if (answer.due > now) continue
      inFlight.splice(i, 1)
      if (answer.generation !== generation[answer.instance]) continue
      const params = options.params[answer.instance] as RateControlParams
      const recent = (starts[answer.instance] as number[]).filter((at) => at > now - 1_000)
      starts[answer.instance] = recent
      states[answer.instance] = nextRateState(
        states[answer.instance] as RateState,
        answer.ok
          ? { kind: 'success', sentAt: answer.sentAt, at: now, saturated: true }
          : { kind: 'rate-limited', sentAt: answer.sentAt, at: now, sentRate: recent.length },
        params,
      )
    }
    for (let instance = 0; instance < states.length; instance++) {
      const state = states[instance] as RateState
      if (state.open) {
        const mine = inFlight.filter((r) => r.instance === instance && r.generation === generation[instance])
        if (mine.length >= concurrency) continue
      } else if ((nextStart[instance] as number) > now) continue
      const ok = options.limiter(now)
      requests.push({ instance, at: now, ok })
      ;(starts[instance] as number[]).push(now)
      inFlight.push({
        instance,
        generation: generation[instance] as number,
        sentAt: now,
        due: now + latency,
        ok,
      })
      nextStart[instance] = Math.max(now + 1, now + 1_000 / state.rate)
    }
  }
  const between = (from: number, to: number) => requests.filter((r) => r.at >= from && r.at < to)
  return {
    requests,
    states,
    delivered: (from, to) =>
      states.map(
        (_, instance) =>
          between(from, to).filter((r) => r.instance === instance && r.ok).length / ((to - from) / 1_000),
      ),
    refusedShare: (from, to) => {
      const window = between(from, to)
      return window.filter((r) => !r.ok).length / Math.max(1, window.length)
    },
  }
}
