import type { SQSRecord } from 'aws-lambda'
import { type AudienceChange, type AudienceDeletion, isLater, membershipKey } from '../courier/audience.ts'
import { listChangeOf } from '../courier/list-change.ts'
import { pathSegment } from '../courier/routing.ts'
import type { Fate } from '../queue/settle-batch.ts'
import { type SegmentEvent, validateEvent } from '../segment/event.ts'
import { MEMORY_DAYS } from './membership-ledger.ts'

/**
 * A batch of the audience queue read and coalesced, record by record: per list, the latest change
 * of each member (the later Segment event wins inside a batch at once), per person the latest
 * deletion, and the fate of each record that cannot be applied. Each record is read on its own,
 * so one that cannot be read, or throws, is that record's failure alone.
 */

/** Records that share one fate: a membership's, a deletion's. */
export interface Carrier {
  readonly records: SQSRecord[]
}

/** One member of one list, with every record that spoke about it in this batch. */
export interface Membership extends Carrier {
  change: AudienceChange
  /** The member id as one path segment; undefined for '.' and '..', which no encoding makes one. */
  readonly segment: string | undefined
}

/** One deleted person, with every record of their deletion in this batch. */
export interface Deletion extends Carrier {
  deletion: AudienceDeletion
  readonly segment: string | undefined
}

/** One list's writes: who is in, who is out. */
export interface ListPlan {
  /** `/lists/{id}/subscriptions`, the id percent-encoded. */
  readonly path: string
  readonly subscribe: Membership[]
  readonly unsubscribe: Membership[]
}

export interface BatchPlan {
  /** The records settled already (unreadable, too old, threw while read). */
  readonly fates: Map<SQSRecord, Fate>
  /** Each record's event, when it is one: its ids go into its dead letter. */
  readonly events: Map<SQSRecord, SegmentEvent>
  /** Whom each record's change or deletion is for, and its messageId: what a list write logs. */
  readonly people: Map<SQSRecord, { readonly messageId: string; readonly recipientId: string }>
  readonly deletions: Map<string, Deletion>
  readonly lists: Map<string, ListPlan>
}

const deadLetter = (reason: string): Fate => ({ action: 'dead-letter', reason, status: 0 })

/** Retried, dead-lettered once it keeps throwing (lib/queue/expiry.ts). */
export const exceptionFate = (error: unknown, delaySeconds: number): Fate => ({
  action: 'retry',
  delaySeconds,
  reason: `unexpected error: ${String(error)}`,
  exception: true,
})

/** Reads one record into the plan. Throws what its reading throws (the caller settles it). */
const readInto = (
  plan: BatchPlan,
  memberships: Map<string, Membership & { readonly path: string }>,
  record: SQSRecord,
  forgottenBefore: number,
): void => {
  let value: unknown
  try {
    value = JSON.parse(record.body)
  } catch {
    plan.fates.set(record, deadLetter('message body is not JSON'))
    return
  }
  const validation = validateEvent(value, record.body)
  if (!validation.ok) {
    plan.fates.set(record, deadLetter(`not a valid Segment event: ${validation.error}`))
    return
  }
  plan.events.set(record, validation.event)
  const read = listChangeOf(validation.event, validation.ids)
  if (read === undefined) {
    plan.fates.set(record, deadLetter('not an Engage audience event'))
    return
  }
  const { messageId, recipientId } = 'change' in read ? read.change : read.deletion
  plan.people.set(record, { messageId, recipientId })
  if ('deletion' in read) {
    const { deletion } = read
    const known = plan.deletions.get(deletion.recipientId)
    if (known === undefined) {
      plan.deletions.set(deletion.recipientId, {
        deletion,
        records: [record],
        segment: pathSegment(deletion.recipientId),
      })
    } else {
      known.records.push(record)
      if (isLater(deletion, known.deletion)) known.deletion = deletion
    }
    return
  }
  const { change } = read
  if (change.at < forgottenBefore) {
    plan.fates.set(
      record,
      deadLetter(
        `the event is older than the membership ledger's ${MEMORY_DAYS}-day memory: applying it could undo a later change already forgotten; redrive after checking the member's list`,
      ),
    )
    return
  }
  // `{key}-{id}` always holds a '-', so it is never a dot-segment; a member id may be one.
  const path = `/lists/${encodeURIComponent(change.listId)}/subscriptions`
  const segment = pathSegment(change.recipientId)
  const key = membershipKey(change)
  const known = memberships.get(key)
  if (known === undefined) memberships.set(key, { change, records: [record], segment, path })
  else {
    known.records.push(record)
    // Inside a batch the later event wins at once; against earlier batches, the ledger decides.
    if (isLater(change, known.change)) known.change = change
  }
}

/**
 * Reads every record of the batch. `forgottenBefore` (epoch ms): a change older than the ledger
 * remembers is dead-lettered, since the change it would have lost to may be forgotten already.
 */
export const planBatch = (
  records: readonly SQSRecord[],
  forgottenBefore: number,
  exceptionDelaySeconds: number,
): BatchPlan => {
  const plan: BatchPlan = {
    fates: new Map(),
    events: new Map(),
    people: new Map(),
    deletions: new Map(),
    lists: new Map(),
  }
  const memberships = new Map<string, Membership & { readonly path: string }>()
  for (const record of records) {
    try {
      readInto(plan, memberships, record, forgottenBefore)
    } catch (error) {
      plan.fates.set(record, exceptionFate(error, exceptionDelaySeconds))
    }
  }
  // Per list: who is in, who is out.
  for (const { path, ...membership } of memberships.values()) {
    const list = plan.lists.get(membership.change.listId) ?? { path, subscribe: [], unsubscribe: [] }
    ;(membership.change.subscribed ? list.subscribe : list.unsubscribe).push(membership)
    plan.lists.set(membership.change.listId, list)
  }
  return plan
}
