import { HttpError } from '../errors/http-error.ts'
import { jsonErrorForLog } from '../user-key.ts'
import {
  arrayElementSlices,
  firstElementText,
  nestsDeeperThan,
  objectValueStart,
  objectValueText,
} from './json-slices.ts'
import { MAX_EVENTS_PER_REQUEST, MAX_JSON_DEPTH } from './limits.ts'

/**
 * Reading Segment's request: one event object (classic Webhooks, Webhooks (Actions) without
 * batching), a JSON array (Webhooks (Actions) with batching), an array of `{"json": event}`
 * (Extensible Webhook with batching) or the tracking API's `{"batch": [...]}`. Each item keeps
 * its exact source text so it is queued byte-for-byte.
 *
 * The Extensible Webhook's performBatch sends `payload.map(({data}) => encodeBody(data, type))`,
 * and encodeBody wraps each event as `{json: data}` (or, with a form Content-Type, `{body: "a=b&…"}`):
 * https://github.com/segmentio/action-destinations/blob/main/packages/destination-actions/src/destinations/webhook-extensible/send/index.ts
 */

export type BodyShape = 'single' | 'array' | 'batch' | 'extensible'

export interface RequestItem {
  readonly index: number
  /** The item's exact JSON text as Segment sent it. */
  readonly raw: string
  readonly value: unknown
  /** Why the item cannot be an event before it is even validated (a form-encoded element). */
  readonly error?: string
}

export interface SegmentRequest {
  readonly shape: BodyShape
  readonly parsed: unknown
  readonly items: readonly RequestItem[]
}

/** The body as text, decoded from base64 when API Gateway encoded it, and never bigger than allowed. */
export const decodeBody = (body: string | undefined, isBase64Encoded: boolean, maxBytes: number): string => {
  const bytes = isBase64Encoded ? Buffer.from(body ?? '', 'base64') : Buffer.from(body ?? '', 'utf8')
  if (bytes.length > maxBytes) {
    throw new HttpError(413, `body is ${bytes.length} bytes; the most this relay accepts is ${maxBytes}`)
  }
  return isBase64Encoded ? bytes.toString('utf8') : (body ?? '')
}

/**
 * The body parsed, after one pass has checked its nesting (see MAX_JSON_DEPTH): 400 for an empty
 * body or one that is not JSON, 413 for one nested deeper than the limit.
 */
export const parseJson = (text: string): unknown => {
  if (text.trim() === '') throw new HttpError(400, 'body is empty; expected a Segment event as JSON')
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
    throw new HttpError(
      413,
      `body nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels, the most this relay reads`,
    )
  }
  try {
    return JSON.parse(text)
  } catch (error) {
    // JSON.parse's own message quotes the body; the reason is logged, so only the position is said.
    throw new HttpError(400, `body is not valid JSON: ${jsonErrorForLog(error)}`)
  }
}

const itemsOf = (values: readonly unknown[], slices: readonly string[]): RequestItem[] =>
  values.map((value, index) => ({ index, value, raw: slices[index] ?? JSON.stringify(value) }))

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** An Extensible Webhook batch element: `{"json": event}` or a form-encoded `{"body": "…"}`, never an event. */
export const isExtensibleWrapper = (value: unknown): value is { json: unknown } | { body: string } =>
  isObject(value) &&
  !('type' in value) &&
  Object.keys(value).length === 1 &&
  ('json' in value || typeof value.body === 'string')

/** The event inside an Extensible Webhook element, with its exact text; a form-encoded one stays as is. */
const unwrap = (item: RequestItem): RequestItem => {
  const value = item.value as Record<string, unknown>
  if (!('json' in value)) {
    return {
      ...item,
      error:
        'the Extensible Webhook sent this event form-encoded ({"body": …}); set the mapping\'s Content-Type header to application/json',
    }
  }
  return {
    index: item.index,
    value: value.json,
    raw: objectValueText(item.raw, 'json') ?? JSON.stringify(value.json),
  }
}

const batchOf = (parsed: unknown): unknown[] | undefined => {
  if (Array.isArray(parsed)) return parsed
  if (typeof parsed !== 'object' || parsed === null || 'type' in parsed) return undefined
  const batch = (parsed as { batch?: unknown }).batch
  return Array.isArray(batch) ? batch : undefined
}

/** How many events a parsed body holds: the length of its batch, else one. */
export const eventCount = (parsed: unknown): number => batchOf(parsed)?.length ?? 1

/**
 * The texts Segment's Actions webhooks may have signed for the first event of a batch body: its
 * exact source text (for an Extensible Webhook element `{"json": event}`, the event inside) and
 * that event re-serialised, `JSON.stringify(payload[0].data)` as Segment computes it. Empty for a
 * body that is not a batch.
 */
export const firstEventTexts = (text: string, parsed: unknown): string[] => {
  const batch = batchOf(parsed)
  if (batch === undefined || batch.length === 0) return []
  const start = Array.isArray(parsed) ? text.indexOf('[') : objectValueStart(text, 'batch')
  const element = start === undefined ? undefined : firstElementText(text, start)
  const wrapped = isExtensibleWrapper(batch[0]) && 'json' in batch[0]
  const value = wrapped ? (batch[0] as { json: unknown }).json : batch[0]
  const exact = element !== undefined && wrapped ? objectValueText(element, 'json') : element
  const serialised = JSON.stringify(value)
  return exact === undefined || exact === serialised ? [serialised] : [exact, serialised]
}

/** 413 naming the limit when a body holds more events than Segment ever sends in one request. */
export const checkEventCount = (parsed: unknown): void => {
  const count = eventCount(parsed)
  if (count > MAX_EVENTS_PER_REQUEST) {
    throw new HttpError(
      413,
      `body holds ${count} events; the most this relay takes in one request is ${MAX_EVENTS_PER_REQUEST} (Segment's maximum batch size)`,
    )
  }
}

export const readSegmentRequest = (text: string, parsed: unknown): SegmentRequest => {
  checkEventCount(parsed)
  if (Array.isArray(parsed)) {
    const items = itemsOf(parsed, arrayElementSlices(text, text.indexOf('[')))
    if (parsed.length > 0 && parsed.every(isExtensibleWrapper)) {
      return { shape: 'extensible', parsed, items: items.map(unwrap) }
    }
    return { shape: 'array', parsed, items }
  }
  if (typeof parsed === 'object' && parsed !== null) {
    const batch = (parsed as { batch?: unknown }).batch
    if (Array.isArray(batch) && !('type' in parsed)) {
      const start = objectValueStart(text, 'batch') ?? 0
      return { shape: 'batch', parsed, items: itemsOf(batch, arrayElementSlices(text, start)) }
    }
    return { shape: 'single', parsed, items: [{ index: 0, value: parsed, raw: text.trim() }] }
  }
  throw new HttpError(400, 'body must be a Segment event object, an array of events, or {"batch": [...]}')
}
