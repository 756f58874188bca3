import type { EndpointClass } from '../courier/endpoint-class.ts'

/**
 * Paces requests to a known Courier budget so the limit is not hit in the first place.
 * `COURIER_MAX_RPS` is for the whole fleet; each deliver instance gets an even share of it
 * (the event source's maximum concurrency caps how many instances run at once).
 * Requests are spaced evenly (no bursts): a burst is what trips a per-second limiter.
 */

export interface Pacer {
  /** Resolves when the next request may start. */
  readonly acquire: () => Promise<void>
  readonly ratePerSecond: number
}

export const perInstanceRate = (fleetRps: number, maxConcurrency: number): number => fleetRps / maxConcurrency

export const createPacer = (ratePerSecond: number, now: () => number = Date.now): Pacer => {
  const intervalMs = 1_000 / ratePerSecond
  let nextSlot = 0
  return {
    ratePerSecond,
    acquire: () => {
      const current = now()
      const slot = Math.max(current, nextSlot)
      nextSlot = slot + intervalMs
      const wait = slot - current
      return wait <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, wait))
    },
  }
}

export const unpaced: Pacer = { acquire: () => Promise.resolve(), ratePerSecond: Number.POSITIVE_INFINITY }

/**
 * The pacer of each of Courier's endpoint classes (lib/courier/endpoint-class.ts), so a slow or
 * limited class (list writes: 20 a minute) never holds back the others. Callers ask for the
 * class's pacer before every request; what stands behind it (a fixed rate, an adaptive limiter)
 * is the caller's choice.
 */
export type PacerFor = (endpoint: EndpointClass) => Pacer
