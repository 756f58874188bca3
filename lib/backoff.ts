/**
 * Exponential backoff with full jitter: a uniformly random wait between 0 and
 * min(cap, base × 2^(attempt-1)). Full jitter spreads retries of many clients evenly, so a
 * recovering Courier is not hit by a synchronised wave.
 * https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
 */

export type Random = () => number

/** The ceiling of the wait before retry number `attempt` (1-based): base, 2·base, 4·base … cap. */
export const backoffCeiling = (attempt: number, base: number, cap: number): number =>
  Math.min(cap, base * 2 ** Math.max(0, Math.min(attempt - 1, 52)))

export const fullJitterBackoffMs = (
  attempt: number,
  baseMs: number,
  capMs: number,
  random: Random = Math.random,
) => Math.floor(random() * backoffCeiling(attempt, baseMs, capMs))

/**
 * Visibility timeout for a message received `receiveCount` times. Never below `base`/2 so a
 * failing message is not redelivered at once (a zero visibility timeout would spin the poller).
 */
export const retryDelaySeconds = (
  receiveCount: number,
  base: number,
  max: number,
  random: Random = Math.random,
) => {
  const ceiling = backoffCeiling(receiveCount, base, max)
  const floor = Math.min(ceiling, Math.ceil(base / 2))
  return Math.max(floor, Math.round(random() * ceiling))
}

/** A fixed delay with ±20% jitter, for waits that must not be shortened much (rate limits, bad credentials). */
export const jitteredSeconds = (seconds: number, random: Random = Math.random) =>
  Math.max(1, Math.round(seconds * (0.8 + 0.4 * random())))
