import type { DeletionMark, DeletionMarks } from '../deletion-marks.ts'
import {
  type DeletionStep,
  type DeletionTime,
  deletionStep,
  deletionTimeOf,
  isErasable,
  isErasedBy,
} from '../segment/erasure.ts'
import type { SegmentEvent } from '../segment/event.ts'
import type { Identities } from '../segment/identity.ts'

/**
 * Deliver's erasure check: every identify, track and group of a batch is held against its
 * person's deletion mark (lib/deletion-marks.ts), read for the whole batch in one strongly
 * consistent BatchGetItem (one per 100 people: one for any FIFO batch, whose size is at most 10)
 * before anything is sent, so there is no DynamoDB call per event. The rules on time are
 * lib/segment/erasure.ts's.
 *
 * A deletion is marked before its Courier calls: from then on every event Segment received
 * before it, whenever it comes (a late retry, a redrive, an event a standard queue hands out after
 * the deletion), is erased. What the check cannot see: an event of the person that another
 * instance read the marks for before this mark was written and is sending at the same moment
 * (a standard queue; on a FIFO queue the person's events and their deletion share one message
 * group, so they never run at once).
 */

/** The marks of one batch's people, or why they could not be read (the records it concerns retry). */
export type BatchMarks =
  | { readonly marks: ReadonlyMap<string, DeletionMark> }
  | { readonly unavailable: string }
  /** No check (a benchmark's baseline only: deployed and local relays always check). */
  | undefined

/** What the check makes of one event. */
export type ErasureVerdict =
  | { readonly kind: 'send' }
  | { readonly kind: 'erased'; readonly reason: string }
  | { readonly kind: 'unknown'; readonly reason: string }
  | {
      readonly kind: 'deletion'
      readonly person: string
      readonly deletion: DeletionTime
      readonly step: DeletionStep
    }

/** The person a deletion names, and whose events it covers: the userId (Segment deletes by it). */
const personOf = (ids: Identities): string | undefined => ids.userId

/** Reads the marks of every person the batch's events name, in one go. */
export const readBatchMarks = async (
  deletionMarks: DeletionMarks | undefined,
  people: Iterable<Identities>,
): Promise<BatchMarks> => {
  if (deletionMarks === undefined) return undefined
  const wanted = new Set<string>()
  for (const ids of people) {
    const person = personOf(ids)
    if (person !== undefined) wanted.add(person)
  }
  if (wanted.size === 0) return { marks: new Map() }
  try {
    return { marks: await deletionMarks.read([...wanted]) }
  } catch (error) {
    return {
      unavailable: `deletion marks could not be read: ${error instanceof Error ? error.message : String(error)}`,
    }
  }
}

/** Pure: the verdict on one event, given the batch's marks. */
export const erasureVerdict = (batch: BatchMarks, event: SegmentEvent, ids: Identities): ErasureVerdict => {
  const person = personOf(ids)
  if (batch === undefined || person === undefined) return { kind: 'send' }
  const isDeletion = event.type === 'delete'
  // page, screen, alias: skipped anyway, nothing to check.
  if (!isDeletion && !isErasable(event)) return { kind: 'send' }
  if ('unavailable' in batch) return { kind: 'unknown', reason: batch.unavailable }
  const mark = batch.marks.get(person)
  if (isDeletion) {
    const deletion = { at: deletionTimeOf(event), messageId: event.messageId }
    return { kind: 'deletion', person, deletion, step: deletionStep(deletion, mark) }
  }
  if (mark !== undefined && isErasedBy(event, mark)) {
    return {
      kind: 'erased',
      reason: `the person was deleted after Segment received this event (deletion ${mark.messageId} of ${new Date(mark.at).toISOString()})`,
    }
  }
  return { kind: 'send' }
}
