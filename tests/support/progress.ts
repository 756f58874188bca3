/**
 * Waits bounded by progress, not by the clock: a slow or busy machine only makes them take longer.
 * `untilStalled` fails when `progress` (any count that grows while work is done: deliveries,
 * Courier requests, invocations) has not moved for `stallMs`, which only a hang does.
 */

export const untilStalled = async (
  condition: () => boolean,
  progress: () => number,
  { stallMs = 30_000, what = 'condition' }: { stallMs?: number; what?: string } = {},
): Promise<void> => {
  let last = progress()
  let movedAt = Date.now()
  while (!condition()) {
    const now = progress()
    if (now !== last) {
      last = now
      movedAt = Date.now()
    } else if (Date.now() - movedAt > stallMs) {
      throw new Error(`${what}: no progress for ${stallMs} ms (stuck at ${now})`)
    }
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
