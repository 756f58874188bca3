import { createHmac, timingSafeEqual } from 'node:crypto'
import { firstEventTexts } from './request.ts'

/**
 * What a Segment `X-Signature` proves, and about which events. Segment signs with hex
 * HMAC-SHA1(shared secret, text):
 * - classic Webhooks: the JSON body
 *   (https://segment.com/docs/connections/destinations/catalog/webhooks/#authentication);
 * - Webhooks (Actions): `JSON.stringify(payload.length ? payload[0].data : payload.data)`, so a
 *   batch is signed over **its first event only**
 *   (https://github.com/segmentio/action-destinations/blob/main/packages/destination-actions/src/destinations/webhook/index.ts,
 *   extendRequest);
 * - Extensible Webhook: the same expression, so a batch of `{"json": event}` is signed over the
 *   first *unwrapped* event
 *   (https://github.com/segmentio/action-destinations/blob/main/packages/destination-actions/src/destinations/webhook-extensible/index.ts).
 *
 * So a signature covers every event of a request only when it matches the raw body or the whole
 * parsed body; a match on a batch's first event covers that event and nothing else, and anyone
 * who saw one signed request could put it first in a batch of their own. The caller decides what
 * a first-event match may let through (lib/ingest/authenticate.ts).
 */

/** Hex of HMAC-SHA1: 20 bytes, 40 hex digits. */
const SIGNATURE = /^[0-9a-f]{40}$/i

const hmac = (secret: string, text: string): Buffer =>
  createHmac('sha1', secret).update(text, 'utf8').digest()

export const sign = (secret: string, text: string): string => hmac(secret, text).toString('hex')

/**
 * The 20 bytes of an `X-Signature` header, or undefined unless it is exactly 40 hex digits (any
 * case, surrounding spaces ignored): `Buffer.from(hex)` alone stops at the first bad character
 * and would take `<valid>zz` as valid.
 */
export const parseSignature = (header: string): Buffer | undefined => {
  const hex = header.trim()
  return SIGNATURE.test(hex) ? Buffer.from(hex, 'hex') : undefined
}

const matches = (expected: Buffer, given: Buffer): boolean =>
  expected.length === given.length && timingSafeEqual(expected, given)

/** Which events of a request a signature covers. */
export type SignatureCoverage =
  /** The raw body as received: every event, byte for byte. */
  | { readonly covers: 'body' }
  /** `signedText` (the whole parsed body re-serialised): every event, as that text reads. */
  | { readonly covers: 'parsed'; readonly signedText: string }
  /** Only the first event of a batch, as `signedText` (that event's text) reads. */
  | { readonly covers: 'first-event'; readonly signedText: string }
  | { readonly covers: 'nothing' }

/** What a signature may have been computed over, read from the body at most once. */
export interface SignedCandidates {
  readonly raw: string
  /** The parsed body's texts: undefined when the body is not JSON (or nests too deep to read). */
  readonly parsed: () => { readonly whole: string; readonly firstEvent: readonly string[] } | undefined
}

/**
 * Constant-time check of a signature against the texts Segment may have signed, the raw body
 * first, so a classic Webhooks request (the raw body) costs one HMAC and no parse.
 */
export const signatureCoverage = (
  secret: string,
  signature: Buffer,
  candidates: SignedCandidates,
): SignatureCoverage => {
  if (matches(hmac(secret, candidates.raw), signature)) return { covers: 'body' }
  const parsed = candidates.parsed()
  if (parsed === undefined) return { covers: 'nothing' }
  if (matches(hmac(secret, parsed.whole), signature)) return { covers: 'parsed', signedText: parsed.whole }
  for (const text of parsed.firstEvent) {
    if (matches(hmac(secret, text), signature)) return { covers: 'first-event', signedText: text }
  }
  return { covers: 'nothing' }
}

/**
 * Whether `header` is a well-formed signature of anything Segment may have signed in `raw` (the
 * body, the parsed body or a batch's first event): for tools checking requests they sent.
 * Which events it covers is signatureCoverage's answer.
 */
export const verifySignature = (
  secret: string,
  header: string,
  raw: string,
  parse: () => unknown,
): boolean => {
  const signature = parseSignature(header)
  if (signature === undefined) return false
  const candidates: SignedCandidates = {
    raw,
    parsed: () => {
      try {
        const parsed = parse()
        return { whole: JSON.stringify(parsed), firstEvent: firstEventTexts(raw, parsed) }
      } catch {
        return undefined
      }
    },
  }
  return signatureCoverage(secret, signature, candidates).covers !== 'nothing'
}
