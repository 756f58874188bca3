import type { SegmentEvent } from '../segment/event.ts'
import type { Identities } from '../segment/identity.ts'
import { type AudienceChange, type AudienceDeletion, audienceChangeOf, deletionOf } from './audience.ts'

/**
 * What an event asks of the audience list sync, decided in one place for both functions: deliver
 * hands exactly these events to the audience queue, and the list sync reads them back the same
 * way. A membership change (an Engage audience event), a person's deletion (so an older change
 * cannot put them back on a list), or nothing. `ids` are the event's ids as read from its text
 * (`validateEvent`), so a 20-digit numeric id keeps its digits.
 */
export type ListChange = { readonly change: AudienceChange } | { readonly deletion: AudienceDeletion }

export const listChangeOf = (event: SegmentEvent, ids?: Identities): ListChange | undefined => {
  const change = audienceChangeOf(event, ids)
  if (change !== undefined) return { change }
  const deletion = deletionOf(event, ids)
  return deletion === undefined ? undefined : { deletion }
}
