import { objectValueText } from './json-slices.ts'

/**
 * Who an event is about, as Segment's libraries send it. `userId`, `anonymousId`, `groupId` and
 * `previousId` are strings in the Spec, but the libraries pass through whatever the app gave
 * them: analytics-node and analytics.js do not cast `identify(12345)` to a string, and send
 * `"userId": null` for an anonymous visitor. One rule for all four fields:
 *
 * - a non-empty string is the id itself;
 * - a finite number is the id in its string form: the digits as Segment sent them (so a
 *   20-digit integer beyond 2^53 keeps its value), otherwise `String(n)`;
 * - absent, `null` or `""` is no id;
 * - a string that is not well-formed Unicode (a lone surrogate) is an error;
 * - anything else (boolean, object, array) is an error that names what it is.
 *
 * Routing, FIFO grouping and logs use these string forms; the queued text stays exactly what
 * Segment sent. https://segment.com/docs/connections/spec/identify/#identities
 * https://github.com/segmentio/analytics-next/blob/main/packages/core/src/events/index.ts
 */

export const IDENTITY_FIELDS = ['userId', 'anonymousId', 'groupId', 'previousId'] as const
export type IdentityField = (typeof IDENTITY_FIELDS)[number]

/** The string form of each identity field the event carries. */
export type Identities = Partial<Record<IdentityField, string>>

export type IdentitiesRead =
  | { readonly ok: true; readonly ids: Identities }
  | { readonly ok: false; readonly error: string }

const INTEGER_LITERAL = /^-?\d+$/

/**
 * An id with a lone surrogate (`"\ud800"` in the JSON text) is no text at all: it cannot be
 * percent-encoded into a Courier path (encodeURIComponent throws URIError), nor be UTF-8 on the
 * wire, and SQS refuses it in attributes.
 * https://tc39.es/ecma262/#sec-encodeuricomponent-uricomponent ;
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
 */
export const notWellFormed = (field: string): string =>
  `${field} is not well-formed Unicode (it holds a lone surrogate, e.g. "\\ud800")`

const describe = (value: unknown): string => (Array.isArray(value) ? 'an array' : `a ${typeof value}`)

/**
 * The string form of one id value, `undefined` for no id, or an error naming the value's type.
 * `source` is the value's exact JSON text, when known: it keeps integers beyond 2^53 exact.
 */
export const identityString = (
  field: string,
  value: unknown,
  source?: string,
): { readonly id: string | undefined } | { readonly error: string } => {
  if (value === undefined || value === null || value === '') return { id: undefined }
  if (typeof value === 'string') {
    return value.isWellFormed() ? { id: value } : { error: notWellFormed(field) }
  }
  if (typeof value === 'number' && Number.isFinite(value)) {
    const literal = source?.trim()
    const exact = !Number.isSafeInteger(value) && literal !== undefined && INTEGER_LITERAL.test(literal)
    return { id: exact ? literal : String(value) }
  }
  return { error: `${field} must be a string or a number; got ${describe(value)}` }
}

/**
 * `identityString` of one field of an event object; `raw`, the event's exact JSON text, is read only
 * for a number whose digits a double cannot hold.
 */
const fieldIdentity = (event: Readonly<Record<string, unknown>>, field: IdentityField, raw?: string) => {
  const value = event[field]
  const source =
    raw !== undefined && typeof value === 'number' && !Number.isSafeInteger(value)
      ? objectValueText(raw, field)
      : undefined
  return identityString(field, value, source)
}

/**
 * Reads every identity field of a (top-level) event object. `raw` is the event's exact JSON text,
 * used only for numbers whose digits a double cannot hold.
 */
export const readIdentities = (event: Readonly<Record<string, unknown>>, raw?: string): IdentitiesRead => {
  const ids: Identities = {}
  for (const field of IDENTITY_FIELDS) {
    const read = fieldIdentity(event, field, raw)
    if ('error' in read) return { ok: false, error: read.error }
    if (read.id !== undefined) ids[field] = read.id
  }
  return { ok: true, ids }
}

/** Who an event is about and by which field: the userId when there is one, else the anonymousId. */
export interface Person {
  readonly field: 'userId' | 'anonymousId'
  readonly id: string
}

/**
 * The person an event is about: the userId when there is one, else the anonymousId, as Courier's
 * inbound endpoint picks the profile (`userId || anonymousId`). The key FIFO groups on, so one
 * person's events reach Courier in order, and the member of an audience list. `undefined` when
 * the event names nobody. https://segment.com/docs/connections/spec/identify/#identities
 */
export const personOf = (ids: Identities): Person | undefined => {
  if (ids.userId !== undefined) return { field: 'userId', id: ids.userId }
  if (ids.anonymousId !== undefined) return { field: 'anonymousId', id: ids.anonymousId }
  return undefined
}

/** The id of `personOf`. */
export const userKey = (ids: Identities): string | undefined => personOf(ids)?.id

/** `userKey` straight from an event object (and its text, for 20-digit ids). */
export const userKeyOf = (event: Readonly<Record<string, unknown>>, raw?: string): string | undefined => {
  const read = readIdentities(event, raw)
  return read.ok ? userKey(read.ids) : undefined
}

/**
 * `personOf` read leniently from any JSON value (an event, or whatever was sent in its place): a
 * userId or anonymousId of the wrong type is no id, and the other field still names the person.
 * `raw` is the value's exact JSON text, when known: a 20-digit numeric id keeps its digits.
 */
export const personIn = (value: unknown, raw?: string): Person | undefined => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const event = value as Record<string, unknown>
  const ids: Identities = {}
  for (const field of ['userId', 'anonymousId'] as const) {
    const read = fieldIdentity(event, field, raw)
    if ('id' in read && read.id !== undefined) ids[field] = read.id
  }
  return personOf(ids)
}
