import { HttpError } from '../errors/http-error.ts'
import { arrayElementSlices, objectValueStart } from './json-slices.ts'

/**
 * Reading Segment's request: one event object (classic Webhooks, Webhooks (Actions) without
 * batching), a JSON array (Webhooks (Actions) with batching) or the tracking API's
 * `{"batch": [...]}`. Each item keeps its exact source text so it is queued byte-for-byte.
 */

export type BodyShape = 'single' | 'array' | 'batch'

export interface RequestItem {
  readonly index: number
  /** The item's exact JSON text as Segment sent it. */
  readonly raw: string
  readonly value: unknown
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

export const parseJson = (text: string): unknown => {
  if (text.trim() === '') throw new HttpError(400, 'body is empty; expected a Segment event as JSON')
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new HttpError(400, `body is not valid JSON: ${(error as Error).message}`, { cause: error })
  }
}

const itemsOf = (values: readonly unknown[], slices: readonly string[]): RequestItem[] =>
  values.map((value, index) => ({ index, value, raw: slices[index] ?? JSON.stringify(value) }))

export const readSegmentRequest = (text: string, parsed: unknown): SegmentRequest => {
  if (Array.isArray(parsed)) {
    return { shape: 'array', parsed, items: itemsOf(parsed, arrayElementSlices(text, text.indexOf('['))) }
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
