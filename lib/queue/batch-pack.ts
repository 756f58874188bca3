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
