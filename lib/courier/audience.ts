import type { SegmentEvent } from '../segment/event.ts'
import { type Identities, personOf, readIdentities } from '../segment/identity.ts'

/**
 * Engage audiences and Journeys steps as Courier lists, the way Courier's own Segment (Actions)
 * destination maps them (its *Sync Audience* action, segmentio/action-destinations
 * `packages/destination-actions/src/destinations/courier/audienceToList/index.ts`, which accepts
 * both classes since segmentio/action-destinations#2691):
 *
 * - an audience event is an identify or track whose `context.personas.computation_class` is
 *   `"audience"` or `"journey_step"` (a Journeys step sends the same calls as an audience,
 *   https://www.twilio.com/docs/segment/engage/journeys/v1/send-data: the step key names the trait or property);
 * - the list is `{computation_key}-{computation_id}`;
 * - the member is `userId`, else `anonymousId`;
 * - `traits[computation_key]` (identify) or `properties[computation_key]` (track `Audience
 *   Entered` / `Audience Exited`) truthy means subscribed, anything else unsubscribed.
 *
 * The relay adds what one call per member cannot give: the change carries the event's time, so
 * that for one member of one list the later Segment event wins however the two arrive.
 * Pure: no I/O.
 */

export interface AudienceChange {
  /** `{computation_key}-{computation_id}`, not yet encoded for a path. */
  readonly listId: string
  /** userId, else anonymousId. */
  readonly recipientId: string
  readonly subscribed: boolean
  /** The Segment event's time (epoch ms): `timestamp`, else `receivedAt`; 0 when neither parses. */
  readonly at: number
  readonly messageId: string
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const idText = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' && value.isWellFormed()
    ? value
    : typeof value === 'number' && Number.isFinite(value)
      ? String(value)
      : undefined

/** The Engage computation classes Courier's Sync Audience action takes (its `segment_computation_action` choices). */
export const LIST_COMPUTATION_CLASSES: readonly string[] = ['audience', 'journey_step']

const timeOf = (event: SegmentEvent): number => {
  for (const value of [event.timestamp, event.receivedAt]) {
    const at = typeof value === 'string' ? Date.parse(value) : Number.NaN
    if (Number.isFinite(at)) return at
  }
  return 0
}

/**
 * The event's ids in their string form. Pass the ones validateEvent read from the queued text
 * (lib/segment/identity.ts): a 20-digit numeric userId then keeps every digit, where the parsed
 * number (a double) would name another person.
 */
const identitiesOf = (event: SegmentEvent): Identities => {
  const read = readIdentities(event)
  return read.ok ? read.ids : {}
}

/**
 * The list membership an event sets, or undefined when it is not an Engage audience event. `ids`
 * are the event's ids as validateEvent read them from its text; without them, from the parsed event.
 */
export const audienceChangeOf = (
  event: SegmentEvent,
  ids: Identities = identitiesOf(event),
): AudienceChange | undefined => {
  if (event.type !== 'identify' && event.type !== 'track') return undefined
  const context = event.context
  const personas = isRecord(context) ? context.personas : undefined
  if (!isRecord(personas) || !LIST_COMPUTATION_CLASSES.includes(personas.computation_class as string))
    return undefined
  const key = idText(personas.computation_key)
  const id = idText(personas.computation_id)
  const recipientId = personOf(ids)?.id
  if (key === undefined || id === undefined || recipientId === undefined) return undefined
  const values = event.type === 'identify' ? event.traits : event.properties
  return {
    listId: `${key}-${id}`,
    recipientId,
    subscribed: isRecord(values) && Boolean(values[key]),
    at: timeOf(event),
    messageId: event.messageId,
  }
}

/**
 * A Segment user deletion as the list sync sees it: the person (`userId`: Segment's deletion
 * notification names it, and the relay deletes only by it) and when. Undefined for any other event.
 */
export interface AudienceDeletion {
  readonly recipientId: string
  readonly at: number
  readonly messageId: string
}

export const deletionOf = (
  event: SegmentEvent,
  ids: Identities = identitiesOf(event),
): AudienceDeletion | undefined => {
  const recipientId = ids.userId
  if (event.type !== 'delete' || recipientId === undefined) return undefined
  return { recipientId, at: timeOf(event), messageId: event.messageId }
}

/** A member of a list: the key the later change wins on. */
export const membershipKey = (change: Pick<AudienceChange, 'listId' | 'recipientId'>): string =>
  `${change.listId}\u0000${change.recipientId}`

/** Where a change stands in time: the Segment event's time, then its messageId to break a tie. */
export type ChangeOrder = Pick<AudienceChange, 'at' | 'messageId'>

/**
 * Pure: messageIds in the order DynamoDB compares strings, the bytes of their UTF-8 encoding
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html,
 * "String"), which is Unicode code point order. JavaScript's `<` compares UTF-16 code units
 * instead, and the two disagree when a character outside the Basic Multilingual Plane (a
 * surrogate pair, 0xD800–0xDFFF) meets one from U+E000–U+FFFF: '\u{1F600}' < '\uFF5E' in
 * JavaScript, the other way round in DynamoDB. The ledger's conditional writes compare in
 * DynamoDB, so the decision made before the write must compare the same way.
 * Negative, 0 or positive, as `Array.prototype.sort` expects.
 */
export const compareMessageIds = (a: string, b: string): number =>
  a === b ? 0 : Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))

/**
 * Pure: whether `next` supersedes `current`: the later Segment event wins; at the same
 * millisecond the greater messageId (compareMessageIds: DynamoDB's order), so every instance and
 * the ledger's conditional write decide a tie the same way whatever the arrival order; the same
 * change again (a retry) supersedes itself.
 */
export const isLater = (next: ChangeOrder, current: ChangeOrder | undefined): boolean =>
  current === undefined ||
  next.at > current.at ||
  (next.at === current.at && compareMessageIds(next.messageId, current.messageId) >= 0)

/**
 * Courier documents no maximum for the recipients of `POST /lists/{list_id}/subscriptions`
 * (https://www.courier.com/docs/reference/lists/post-subscribe; courier-node
 * `src/resources/lists/subscriptions.ts` add). Its API takes request bodies up to 6 MB
 * (https://www.courier.com/docs/reference/api-overview, "Payload Limits"). Chosen here: at most
 * 1,000 recipients and 1 MB of body per call. Segment caps messageId at 100 characters but not
 * userId, so the byte cap keeps a call of long ids far below Courier's limit.
 */
export const LIST_SUBSCRIBE_MAX_RECIPIENTS = 1_000
export const LIST_SUBSCRIBE_MAX_BYTES = 1_000_000

/** `{"recipients":[]}`: the body around the recipients. */
const BODY_WRAPPER_BYTES = Buffer.byteLength('{"recipients":[]}', 'utf8')

/** The body bytes one recipient adds to `{"recipients":[…]}`: `{"recipientId":…}` and a comma. */
const recipientBytes = (recipientId: string) => Buffer.byteLength(JSON.stringify({ recipientId }), 'utf8') + 1

/**
 * Pure: members in calls of at most `maxRecipients` and `maxBytes` of body each, in order. A
 * single recipient larger than `maxBytes` still gets a call of its own (Courier answers for it).
 */
export const subscribeCalls = <T>(
  members: readonly T[],
  recipientIdOf: (member: T) => string,
  maxRecipients = LIST_SUBSCRIBE_MAX_RECIPIENTS,
  maxBytes = LIST_SUBSCRIBE_MAX_BYTES,
): T[][] => {
  const calls: T[][] = []
  let call: T[] = []
  let bytes = BODY_WRAPPER_BYTES
  for (const member of members) {
    const size = recipientBytes(recipientIdOf(member))
    if (call.length > 0 && (call.length >= maxRecipients || bytes + size > maxBytes)) {
      calls.push(call)
      call = []
      bytes = BODY_WRAPPER_BYTES
    }
    call.push(member)
    bytes += size
  }
  if (call.length > 0) calls.push(call)
  return calls
}
