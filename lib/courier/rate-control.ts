/**
 * Finding Courier's rate limit without being told it: TCP CUBIC congestion control (RFC 9438)
 * applied to a request rate instead of a congestion window, one controller per endpoint class
 * in each instance. Pure: a state and one answer in, the next state out; the pacer (pacer.ts)
 * does the waiting. Each rule and its source: README "How the controller works".
 * https://www.rfc-editor.org/rfc/rfc9438
 */

/** The knobs of one controller; rates are requests per second, times epoch milliseconds. */
export interface RateControlParams {
  /** Where a cold instance starts once it paces (at once, unless `openUntilPushback`). */
  readonly initialRate: number
  /** No pacing until the first pushback (a class without a published or configured limit). */
  readonly openUntilPushback: boolean
  /** Never below this, however many 429s: the queue keeps moving slowly. */
  readonly minRate: number
  /** A hard ceiling (COURIER_MAX_RPS's share), or Infinity. */
  readonly maxRate: number
  /** A cold instance already knows this limit (lists: Courier's published 20/min): no slow start. */
  readonly knownLimit: number | undefined
  /** β: the rate kept on a 429 or timeout. */
  readonly decrease: number
  /** Slow start and catching up: the most one saturated success adds (≈ ×e^gain a second). */
  readonly slowStartGain: number
  /** The rate the RFC's "segment" stands for: 1 request/s, less for a slow class (lists). */
  readonly unit: number
  /** C, relative to wMax, per second³: the return to wMax (the concave region). */
  readonly cubic: number
  /** C past the plateau (the convex region, probing for a limit that went up). */
  readonly probeCubic: number
  /** The plateau sits this far under the rate that was refused (which was just over the limit). */
  readonly headroom: number
  /** Slow start again once this many K have passed without a refusal. */
  readonly probeAfter: number
  /** α: units added per second since the cut, the same for every instance. */
  readonly additive: number
  /** A cycle (the return to wMax and its plateau) spans at least this many requests: K ≥ this ÷ wMax. */
  readonly plateauRequests: number
  /** …but K is at most this many times ∛((1 − β) / C). */
  readonly longestPlateau: number
  /** Refusals this long into an episode (no success since its first cut) are a storm, not a spent window. */
  readonly spentWindowSeconds: number
}

export interface RateState {
  /** Not paced yet: Courier has not pushed back since this instance started (`rate` unused). */
  readonly open: boolean
  /** The rate the pacer spaces requests at. */
  readonly rate: number
  /** The rate of the last refusal: the learnt limit; undefined until the first 429 (slow start). */
  readonly wMax: number | undefined
  /** When the last cut happened (the cubic's epoch); feedback on requests sent before it is not news. */
  readonly lastDecreaseAt: number
  /** Between a cut and the first answer to a request sent after it. */
  readonly recovering: boolean
  /** When the episode's first cut happened (meaningful while `recovering`). */
  readonly episodeStartedAt: number
}

export type RateFeedback =
  /** A 2xx (or any answer that is not a 429 or timeout); `saturated`: it waited for its slot. */
  | { readonly kind: 'success'; readonly sentAt: number; readonly at: number; readonly saturated: boolean }
  | { readonly kind: 'timeout'; readonly sentAt: number; readonly at: number }
  /**
   * A 429 or an answer carrying Retry-After. `sentRate`: requests of this class started in the
   * second before `at` (requests/s), where an open start engages the controller.
   */
  | {
      readonly kind: 'rate-limited'
      readonly sentAt: number
      readonly at: number
      readonly sentRate?: number
    }

/**
 * β = 0.75 (CUBIC's 0.7 cut a little less: a refused request costs less than a lost segment),
 * C = 0.0015 relative to wMax so K = ∛(0.25 / 0.0015) ≈ 5.5 s at any rate (each instance probes
 * the limit rarely: few 429s), a 4× steeper C past the plateau, a plateau at 93% of the refused
 * rate, max probing after 2K, α = 0.02 units/s; a cycle of at least 50 requests (K = 12.5 s at
 * 4 requests/s: 429s near 2% of 20 a second instead of 3–10%, while K stays 5.5 s from 9
 * requests/s up, so a limit that drops and comes back is still followed within 15 s), K at most
 * 2.5 × 5.5 s (fully stretched down to 3.6 requests/s, the R = 20 case); a spent
 * window of 1 s (per-second limits, the common shape). Chosen with `npm run bench` against a limit
 * of 20 and of 200 requests/s and the fleet simulation of tests/courier/rate-control.test.ts.
 */
export const CUBIC_DEFAULTS = {
  decrease: 0.75,
  slowStartGain: 1,
  cubic: 0.0015,
  probeCubic: 0.006,
  headroom: 0.93,
  probeAfter: 2,
  additive: 0.02,
  plateauRequests: 50,
  longestPlateau: 2.5,
  spentWindowSeconds: 1,
} as const satisfies Partial<RateControlParams>

const clamp = (rate: number, params: RateControlParams) =>
  Math.min(params.maxRate, Math.max(params.minRate, rate))

export const initialRateState = (params: RateControlParams): RateState => ({
  open: params.openUntilPushback && params.knownLimit === undefined,
  rate: clamp(params.knownLimit ?? params.initialRate, params),
  wMax: params.knownLimit,
  lastDecreaseAt: Number.NEGATIVE_INFINITY,
  recovering: false,
  episodeStartedAt: Number.NEGATIVE_INFINITY,
})

/**
 * A cold instance that knows the rate the rest of the fleet learnt for this class (`learnt`,
 * requests/s per instance, what another instance last shared): it starts as if it had been
 * refused there three quarters of a cycle ago (within 1% of `learnt`, probing above it after
 * K / 4), not open, so replacing an instance does not send a burst into a limit the
 * others already fill. Halfway (K / 2) left an instance Lambda replaces every 15 s under the
 * shared rate for 6 of them at a low limit: 0.89 of R = 20 used under churn. Pure.
 */
export const seededRateState = (params: RateControlParams, learnt: number, at: number): RateState => {
  const wMax = clamp(learnt, params)
  const since = (3 / 4) * plateauSeconds(params, wMax)
  return {
    open: false,
    rate: clamp(cubicRate(wMax, since, params), params),
    wMax,
    lastDecreaseAt: at - since * 1_000,
    recovering: false,
    episodeStartedAt: Number.NEGATIVE_INFINITY,
  }
}

/**
 * K of RFC 9438 §4.2, seconds: how long the return to wMax takes. ∛((1 − β) / C) at any wMax,
 * longer when that would carry fewer than `plateauRequests` requests at wMax, up to `longestPlateau` times.
 */
export const plateauSeconds = (params: RateControlParams, wMax?: number): number => {
  const k = Math.cbrt((1 - params.decrease) / params.cubic)
  if (wMax === undefined || wMax <= 0) return k
  return Math.min(params.longestPlateau * k, Math.max(k, params.plateauRequests / wMax))
}

/**
 * RFC 9438 §4.2's W_cubic(t) = C × (t − K)³ + W_max with C relative to W_max, so
 * K = ∛((1 − β) / C) for every W_max; a K lengthened to carry `plateauRequests` stretches the
 * same curve in time (C ÷ stretch³); plus the additive term α × unit × t. Pure.
 */
export const cubicRate = (wMax: number, secondsSinceCut: number, params: RateControlParams): number => {
  const t = Math.max(0, secondsSinceCut)
  const k = plateauSeconds(params, wMax)
  const stretch = k / plateauSeconds(params)
  const offset = t - k
  const c = (offset > 0 ? params.probeCubic : params.cubic) / stretch ** 3
  return wMax * (1 + c * offset ** 3) + params.additive * params.unit * t
}

/**
 * Whether the learnt limit is stale at `at` (epoch ms): probeAfter × K have passed since the last
 * cut without a refusal, so the controller has gone back to slow start (max probing, below). Pure.
 */
export const learntLimitStale = (state: RateState, at: number, params: RateControlParams): boolean =>
  state.wMax !== undefined &&
  (at - state.lastDecreaseAt) / 1_000 > params.probeAfter * plateauSeconds(params, state.wMax)

/** The next state after one answer. Pure. */
export const nextRateState = (
  state: RateState,
  feedback: RateFeedback,
  params: RateControlParams,
): RateState => {
  if (state.open) {
    // Nothing is paced until Courier pushes back; then the rate sent at is the rate refused at.
    if (feedback.kind !== 'rate-limited') return state
    const sent = clamp(Math.max(params.unit, feedback.sentRate ?? state.rate), params)
    return nextRateState({ ...state, open: false, rate: sent }, feedback, params)
  }
  switch (feedback.kind) {
    case 'success': {
      // An answer to a request sent after the cut: the limiter takes requests again.
      const recovering = state.recovering && feedback.sentAt < state.lastDecreaseAt
      if (!feedback.saturated) return recovering === state.recovering ? state : { ...state, recovering }
      const sinceCut = (feedback.at - state.lastDecreaseAt) / 1_000
      // Long past the plateau without a refusal the learnt limit is stale: slow start again,
      // BIC's "max probing" (Xu, Harfoush & Rhee, INFOCOM 2004), of which CUBIC's convex region
      // is the smooth form, so a limit far above the old one is found in seconds, not minutes.
      const target =
        state.wMax === undefined || learntLimitStale(state, feedback.at, params)
          ? Number.POSITIVE_INFINITY
          : cubicRate(state.wMax, sinceCut, params)
      const rate = clamp(Math.max(state.rate, Math.min(target, state.rate + params.slowStartGain)), params)
      return { ...state, rate, recovering }
    }
    case 'rate-limited':
    case 'timeout': {
      if (feedback.sentAt < state.lastDecreaseAt) return state
      // Within one episode the cuts stop at β⁴ of the learnt limit (about a third): a limiter
      // whose window is spent refuses everything until it turns, which says nothing about how
      // far under the limit to go; a rate cut to a request a minute would idle for that minute.
      // Still refused past such a window, Courier refuses everything: the cuts go on (RFC 6298
      // §5.5's backoff while losses go on), so a storm is not met at a third of the old rate.
      const spentWindow =
        state.recovering && feedback.at - state.episodeStartedAt <= params.spentWindowSeconds * 1_000
      const episodeFloor = spentWindow && state.wMax !== undefined ? state.wMax * params.decrease ** 4 : 0
      const rate = clamp(Math.max(state.rate * params.decrease, Math.min(state.rate, episodeFloor)), params)
      // A timeout keeps the learnt limit, and so does a 429 while the limiter is still refusing
      // after a cut (its window is spent): only the first refusal of an episode says where it is.
      let wMax = state.wMax
      if (feedback.kind === 'rate-limited' && !state.recovering) {
        wMax =
          params.headroom *
          (state.wMax !== undefined && state.rate < state.wMax
            ? (state.rate * (1 + params.decrease)) / 2
            : state.rate)
      }
      return {
        open: false,
        rate,
        wMax,
        lastDecreaseAt: feedback.at,
        recovering: true,
        episodeStartedAt: state.recovering ? state.episodeStartedAt : feedback.at,
      }
    }
  }
}

/** Replays a sequence of answers from a cold start: the rate after each. For tests and docs. */
export const rateAfter = (feedback: readonly RateFeedback[], params: RateControlParams): number[] => {
  let state = initialRateState(params)
  return feedback.map((f) => {
    state = nextRateState(state, f, params)
    return state.rate
  })
}
