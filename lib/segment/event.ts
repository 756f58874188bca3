import { createHash } from 'node:crypto'
import { describeValue } from '../user-key.ts'
import { type Identities, type IdentityField, notWellFormed, readIdentities } from './identity.ts'
import { topLevelKeys } from './json-slices.ts'

/**
 * The Segment Spec as data: which event types exist and what each one needs. Validation is
 * pure and returns a reason a person can act on, which ingest hands back to Segment in
 * `rejected` and stores with the event in the DLQ.
 * https://segment.com/docs/connections/spec/common/
 */

export const SEGMENT_EVENT_TYPES = [
  'identify',
  'track',
  'group',
  'page',
  'screen',
  'alias',
  'delete',
] as const
export type SegmentEventType = (typeof SEGMENT_EVENT_TYPES)[number]

export interface SegmentEvent {
  readonly type: SegmentEventType
  /** Segment's, or for a deletion notification (which has none) one derived from its text. */
  readonly messageId: string
  /** Strings in the Spec; numbers as the libraries pass them through (see identity.ts). */
  readonly userId?: string | number | null
  readonly anonymousId?: string | number | null
  readonly event?: string
  readonly groupId?: string | number | null
  readonly previousId?: string | number | null
  readonly traits?: Record<string, unknown>
  readonly properties?: Record<string, unknown>
  readonly timestamp?: string
  readonly receivedAt?: string
  readonly [key: string]: unknown
}

/** Segment dedupes on messageId and caps it at 100 characters. */
export const MAX_MESSAGE_ID_LENGTH = 100

/**
 * What each type needs, from what Segment really sends for it, not one rule for all:
 *
 * - identify, track, group, page, screen, alias: `messageId` (Segment's API sets one on every call,
 *   and Courier dedupes on it) and someone to be about, `userId` or `anonymousId`
 *   (https://segment.com/docs/connections/spec/common/#identities); track names its `event`, group
 *   its `groupId` and alias its `previousId` (https://segment.com/docs/connections/spec/alias/).
 * - delete: the classic Webhooks destination's user-deletion notification is only
 *   `{"type":"delete","userId":…,"timestamp":…}`, with no messageId and no anonymousId
 *   (https://segment.com/docs/connections/destinations/catalog/webhooks/#delete). It needs a
 *   `userId`; its messageId is derived from its text, so retries of it deduplicate.
 */
interface TypeRule {
  /** Identity fields that must be present (one of each inner list). */
  readonly ids: readonly (readonly IdentityField[])[]
  /** Other fields that must be a non-empty string. */
  readonly fields: readonly string[]
  /** Whether Segment sends it without a messageId, so one is derived. */
  readonly derivesMessageId: boolean
}

const WHO: readonly IdentityField[] = ['userId', 'anonymousId']

const RULES: Readonly<Record<SegmentEventType, TypeRule>> = {
  identify: { ids: [WHO], fields: [], derivesMessageId: false },
  track: { ids: [WHO], fields: ['event'], derivesMessageId: false },
  group: { ids: [WHO, ['groupId']], fields: [], derivesMessageId: false },
  page: { ids: [WHO], fields: [], derivesMessageId: false },
  screen: { ids: [WHO], fields: [], derivesMessageId: false },
  alias: { ids: [WHO, ['previousId']], fields: [], derivesMessageId: false },
  delete: { ids: [['userId']], fields: [], derivesMessageId: true },
}

export type Validation =
  | { readonly ok: true; readonly event: SegmentEvent; readonly ids: Identities }
  | { readonly ok: false; readonly error: string; readonly messageId: string | undefined }

const isNonEmptyString = (value: unknown): value is string => typeof value === 'string' && value.length > 0

const isSegmentEventType = (value: unknown): value is SegmentEventType =>
  SEGMENT_EVENT_TYPES.includes(value as SegmentEventType)

/** Prefix of a messageId the relay derived, so logs and the DLQ show it is not Segment's. */
export const DERIVED_MESSAGE_ID_PREFIX = 'relay-sha256-'

/**
 * Pure: a stable messageId for an event Segment sends without one: the SHA-256 of its exact
 * text, so a retry of the same notification (the same bytes) gets the same id and deduplicates
 * (FIFO dedup, Courier's idempotency), while two different notifications never share one.
 * 13 + 64 = 77 characters, within Segment's 100.
 */
export const deriveMessageId = (text: string): string =>
  `${DERIVED_MESSAGE_ID_PREFIX}${createHash('sha256').update(text, 'utf8').digest('hex')}`

/**
 * The first key the event's text repeats at its top level, if any. JSON.parse keeps the last
 * value and other parsers may keep the first, so such an event would be routed on one value while
 * Courier reads another. Segment never sends one: its libraries and destinations serialise
 * objects with JSON.stringify, which cannot repeat a key.
 */
const repeatedKey = (text: string, value: Record<string, unknown>): string | undefined => {
  // The text JSON.stringify itself writes for the value (what Segment sends) cannot repeat a key.
  if (text === JSON.stringify(value)) return undefined
  const seen = new Set<string>()
  for (const key of topLevelKeys(text)) {
    if (seen.has(key)) return key
    seen.add(key)
  }
  return undefined
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** An Engage computation's key or id that is not well-formed (they name the Courier list, a path). */
const illFormedComputation = (event: Record<string, unknown>): string | undefined => {
  const personas = isRecord(event.context) ? event.context.personas : undefined
  if (!isRecord(personas)) return undefined
  for (const field of ['computation_key', 'computation_id']) {
    const value = personas[field]
    if (typeof value === 'string' && !value.isWellFormed()) return `context.personas.${field}`
  }
  return undefined
}

/**
 * Checks one event against its type's rule. `text` is the event's exact JSON text (the queued
 * message body): it keeps 20-digit numeric ids exact and is what a derived messageId hashes.
 * Without it, `JSON.stringify(value)` stands in. With it, an event that repeats a top-level key
 * is rejected (one reading for everyone). Ids (and messageId) must be well-formed Unicode.
 */
export const validateEvent = (value: unknown, text?: string): Validation => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: 'event must be a JSON object', messageId: undefined }
  }
  const event = value as Record<string, unknown>
  const messageId = typeof event.messageId === 'string' ? event.messageId : undefined
  const reject = (error: string): Validation => ({ ok: false, error, messageId })

  const repeated = text === undefined ? undefined : repeatedKey(text, event)
  if (repeated !== undefined) {
    return reject(
      `the event repeats the key ${JSON.stringify(repeated)}; a JSON object must name each key once, so it has one reading`,
    )
  }

  if (!isSegmentEventType(event.type)) {
    return reject(
      // What the value is, not what it holds: the reason is logged and kept (lib/user-key.ts).
      `type must be one of ${SEGMENT_EVENT_TYPES.join(', ')}; got ${describeValue(event.type)}`,
    )
  }
  const rule = RULES[event.type]
  const absent = event.messageId === undefined || event.messageId === null
  if (!(absent && rule.derivesMessageId)) {
    if (!isNonEmptyString(event.messageId))
      return reject('messageId is required and must be a non-empty string')
    if (event.messageId.length > MAX_MESSAGE_ID_LENGTH) {
      return reject(
        `messageId must be at most ${MAX_MESSAGE_ID_LENGTH} characters; got ${event.messageId.length}`,
      )
    }
  }
  if (typeof event.messageId === 'string' && !event.messageId.isWellFormed()) {
    return { ok: false, error: notWellFormed('messageId'), messageId: undefined }
  }
  const read = readIdentities(event, text)
  if (!read.ok) return reject(read.error)
  const computation = illFormedComputation(event)
  if (computation !== undefined) return reject(notWellFormed(computation))
  for (const oneOf of rule.ids) {
    if (!oneOf.some((field) => read.ids[field] !== undefined)) {
      return reject(`${event.type} requires ${oneOf.join(' or ')} (a non-empty string or a number)`)
    }
  }
  for (const field of rule.fields) {
    if (!isNonEmptyString(event[field])) return reject(`${event.type} requires ${field} (a non-empty string)`)
  }
  const valid = absent
    ? ({ ...event, messageId: deriveMessageId(text ?? JSON.stringify(event)) } as SegmentEvent)
    : (event as SegmentEvent)
  return { ok: true, event: valid, ids: read.ids }
}
