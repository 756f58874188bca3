/**
 * Packs messages into as few SendMessageBatch calls as SQS allows: at most 10 entries and
 * `maxBytes` per call (SQS counts the body plus every attribute's name, type and value).
 * First-fit decreasing: within a few percent of optimal and, for Segment's small events,
 * exactly ceil(n / 10) calls.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
 */

export const SQS_MAX_BATCH_ENTRIES = 10

export interface Sized {
  readonly size: number
}

export const packBatches = <T extends Sized>(
  items: readonly T[],
  maxBytes: number,
  maxEntries = SQS_MAX_BATCH_ENTRIES,
): T[][] => {
  const batches: { items: T[]; bytes: number }[] = []
  const bySizeDescending = [...items].sort((a, b) => b.size - a.size)
  let firstOpen = 0
  for (const item of bySizeDescending) {
    if (item.size > maxBytes)
      throw new RangeError(`an item of ${item.size} bytes cannot fit a ${maxBytes}-byte batch`)
    let target: { items: T[]; bytes: number } | undefined
    for (let i = firstOpen; i < batches.length; i++) {
      const batch = batches[i] as { items: T[]; bytes: number }
      if (batch.items.length < maxEntries && batch.bytes + item.size <= maxBytes) {
        target = batch
        break
      }
    }
    if (target === undefined) {
      target = { items: [], bytes: 0 }
      batches.push(target)
    }
    target.items.push(item)
    target.bytes += item.size
    // Batches before the first non-full one can never take another item: skip them next time.
    while (firstOpen < batches.length && (batches[firstOpen] as { items: T[] }).items.length >= maxEntries)
      firstOpen++
  }
  return batches.map((batch) => batch.items)
}

export interface Grouped extends Sized {
  /** Items of one group keep their order; undefined: an item with no order to keep. */
  readonly group?: string | undefined
}

/**
 * Packs items into waves of SendMessageBatch calls that keep each group's order: the calls of
 * one wave may run concurrently, the waves run one after the other. Each group's items are cut,
 * in order, into runs that fit one call (10 entries, `maxBytes`); a group's n-th run goes into
 * wave n, whole, so its entries keep their order inside the call (SQS enqueues the entries of
 * one FIFO batch in the order they are listed) and across calls (the next run is sent only once
 * the previous call has answered). Within a wave the runs are packed first-fit decreasing.
 * Different groups may be reordered, one group's items never are. With Segment's small events
 * and at most 10 events per user in a request this is one wave of about ceil(n / 10) calls.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-understanding-logic.html
 */
export const packInWaves = <T extends Grouped>(
  items: readonly T[],
  maxBytes: number,
  maxEntries = SQS_MAX_BATCH_ENTRIES,
): T[][][] => {
  interface Run {
    readonly items: T[]
    bytes: number
  }
  // Each group's runs, in arrival order of the groups' first items.
  const runsByGroup = new Map<string | object, Run[]>()
  for (const item of items) {
    if (item.size > maxBytes)
      throw new RangeError(`an item of ${item.size} bytes cannot fit a ${maxBytes}-byte batch`)
    const key = item.group ?? {}
    const runs = runsByGroup.get(key) ?? []
    runsByGroup.set(key, runs)
    const last = runs[runs.length - 1]
    if (last !== undefined && last.items.length < maxEntries && last.bytes + item.size <= maxBytes) {
      last.items.push(item)
      last.bytes += item.size
    } else {
      runs.push({ items: [item], bytes: item.size })
    }
  }
  const levels: Run[][] = []
  for (const runs of runsByGroup.values()) {
    runs.forEach((run, level) => {
      levels[level] ??= []
      ;(levels[level] as Run[]).push(run)
    })
  }
  return levels.map((runs) => {
    const batches: Run[] = []
    const largestFirst = [...runs].sort((a, b) => b.items.length - a.items.length || b.bytes - a.bytes)
    for (const run of largestFirst) {
      const target = batches.find(
        (batch) => batch.items.length + run.items.length <= maxEntries && batch.bytes + run.bytes <= maxBytes,
      )
      if (target === undefined) batches.push({ items: [...run.items], bytes: run.bytes })
      else {
        target.items.push(...run.items)
        target.bytes += run.bytes
      }
    }
    return batches.map((batch) => batch.items)
  })
}
