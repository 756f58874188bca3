import type { SegmentEvent } from '../segment/event.ts'
import { type AudienceChange, type AudienceDeletion, audienceChangeOf, deletionOf } from './audience.ts'

/**
 * What an event asks of the audience list sync, decided in one place for both functions: deliver
 * hands exactly these events to the audience queue, and the list sync reads them back the same
 * way. A membership change (an Engage audience event), a person's deletion (so an older change
 * cannot put them back on a list), or nothing.
 */
export type ListChange = { readonly change: AudienceChange } | { readonly deletion: AudienceDeletion }

export const listChangeOf = (event: SegmentEvent): ListChange | undefined => {
  const change = audienceChangeOf(event)
  if (change !== undefined) return { change }
  const deletion = deletionOf(event)
  return deletion === undefined ? undefined : { deletion }
}
