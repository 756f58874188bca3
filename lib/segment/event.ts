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
  readonly messageId: string
  readonly userId?: string
  readonly anonymousId?: string
  readonly event?: string
  readonly groupId?: string
  readonly previousId?: string
  readonly traits?: Record<string, unknown>
  readonly properties?: Record<string, unknown>
  readonly timestamp?: string
  readonly receivedAt?: string
  readonly [key: string]: unknown
}

/** Segment dedupes on messageId and caps it at 100 characters. */
export const MAX_MESSAGE_ID_LENGTH = 100

/** Fields a type requires beyond the common ones, each a non-empty string. */
const REQUIRED_FIELDS: Readonly<Record<SegmentEventType, readonly string[]>> = {
  identify: [],
  track: ['event'],
  group: ['groupId'],
  page: [],
  screen: [],
  alias: [],
  delete: ['userId'],
}

export type Validation =
  | { readonly ok: true; readonly event: SegmentEvent }
  | { readonly ok: false; readonly error: string; readonly messageId: string | undefined }

const isNonEmptyString = (value: unknown): value is string => typeof value === 'string' && value.length > 0

const isSegmentEventType = (value: unknown): value is SegmentEventType =>
  SEGMENT_EVENT_TYPES.includes(value as SegmentEventType)

export const validateEvent = (value: unknown): Validation => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: 'event must be a JSON object', messageId: undefined }
  }
  const event = value as Record<string, unknown>
  const messageId = typeof event.messageId === 'string' ? event.messageId : undefined
  const reject = (error: string): Validation => ({ ok: false, error, messageId })

  if (!isSegmentEventType(event.type)) {
    return reject(
      `type must be one of ${SEGMENT_EVENT_TYPES.join(', ')}; got ${JSON.stringify(event.type) ?? 'nothing'}`,
    )
  }
  if (!isNonEmptyString(event.messageId))
    return reject('messageId is required and must be a non-empty string')
  if (event.messageId.length > MAX_MESSAGE_ID_LENGTH) {
    return reject(
      `messageId must be at most ${MAX_MESSAGE_ID_LENGTH} characters; got ${event.messageId.length}`,
    )
  }
  if (!isNonEmptyString(event.userId) && !isNonEmptyString(event.anonymousId)) {
    return reject('userId or anonymousId is required')
  }
  for (const field of REQUIRED_FIELDS[event.type]) {
    if (!isNonEmptyString(event[field])) return reject(`${event.type} requires ${field} (a non-empty string)`)
  }
  return { ok: true, event: event as SegmentEvent }
}
