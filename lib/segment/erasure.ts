import type { DeletionMark } from '../deletion-marks.ts'
import type { SegmentEvent } from './event.ts'

/**
 * Erasure in time: which of a person's events a Segment deletion covers, and whether a deletion
 * still has work to do. Pure: the deletion marks themselves are kept in DynamoDB
 * (lib/deletion-marks.ts).
 *
 * Which clock decides. Segment's deletion notification carries one time, `timestamp`, set by
 * Segment when the deletion request is processed
 * (https://segment.com/docs/connections/destinations/catalog/webhooks/#delete: `{"type":"delete",
 * "userId":…,"timestamp":…}`, no messageId, no receivedAt). An event carries three
 * (https://segment.com/docs/connections/spec/common/#timestamps):
 *
 * - `receivedAt`: Segment's server clock when Segment's API received the call;
 * - `timestamp`: when the call happened on the device, corrected for the device's clock skew as
 *   `receivedAt − (sentAt − originalTimestamp)`, and freely set by server-side libraries (an
 *   import of historical data can carry any time);
 * - `sentAt`, `originalTimestamp`: the device's own clock, "tainted by the user's clock skew".
 *
 * So an event is compared by its `receivedAt`, which is Segment's own clock as the deletion's
 * `timestamp` is: the two are one clock, and no device's skew or backdated import can move an
 * event across the deletion. A late retry of an event Segment received before the deletion, or a
 * redrive of its dead letter days later, keeps its `receivedAt` and is covered; a person who
 * comes back after the deletion is received after it and is not. An event without a
 * `receivedAt` (a Webhooks (Actions) mapping that leaves it out) falls back on its `timestamp`,
 * and one with neither counts as before any deletion (it cannot show it came after).
 *
 * Skew left: Segment's servers share NTP-synchronised time, and the deletion is stamped after
 * the request that asked for it, so an event received in the same millisecond as the deletion is
 * taken as before it (covered): a tie errs on the side of erasing.
 */

/** A person's deletion: when (epoch ms, Segment's clock) and which notification. */
export type DeletionTime = Pick<DeletionMark, 'at' | 'messageId'>

const parseTime = (value: unknown): number | undefined => {
  const at = typeof value === 'string' ? Date.parse(value) : Number.NaN
  return Number.isFinite(at) ? at : undefined
}

/**
 * When Segment received the event (epoch ms): `receivedAt`, else `timestamp`; undefined when
 * neither parses.
 */
export const receivedTimeOf = (event: SegmentEvent): number | undefined =>
  parseTime(event.receivedAt) ?? parseTime(event.timestamp)

/**
 * When a deletion was made (epoch ms): the notification's `timestamp` (its only time), else its
 * `receivedAt`; 0 when neither parses, so a deletion without a time covers no event but still
 * removes the person.
 */
export const deletionTimeOf = (event: SegmentEvent): number =>
  parseTime(event.timestamp) ?? parseTime(event.receivedAt) ?? 0

/** The event types a deletion can erase: those that carry a person's data to Courier. */
const ERASABLE: ReadonlySet<string> = new Set(['identify', 'track', 'group'])

/** Whether a deletion can erase the event at all (identify, track, group). */
export const isErasable = (event: SegmentEvent): boolean => ERASABLE.has(event.type)

/**
 * Pure: whether the person's deletion covers the event: an identify, track or group Segment
 * received at or before the deletion (see the header on the clock). Deletions and the types the
 * relay skips are never erased.
 */
export const isErasedBy = (event: SegmentEvent, deletion: DeletionTime | undefined): boolean => {
  if (deletion === undefined || !isErasable(event)) return false
  const at = receivedTimeOf(event)
  return at === undefined || at <= deletion.at
}

/**
 * What a deletion notification asks, given the person's mark:
 * - `perform`: mark it (if not marked yet) and remove the person from Courier;
 * - `repeat`: this very deletion (same messageId, which for Segment's notification is derived from
 *   its exact text, so a replay of it has the same one) was carried out already;
 * - `superseded`: a later deletion of the person is marked; it removes whatever this one would,
 *   and the person may have come back since, so this older one must not wipe them.
 */
export type DeletionStep = 'perform' | 'repeat' | 'superseded'

export const deletionStep = (deletion: DeletionTime, mark: DeletionMark | undefined): DeletionStep => {
  if (mark === undefined) return 'perform'
  if (mark.messageId === deletion.messageId) return mark.done ? 'repeat' : 'perform'
  return mark.at > deletion.at ? 'superseded' : 'perform'
}
