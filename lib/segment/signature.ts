import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * Segment signs with `X-Signature` = hex HMAC-SHA1(shared secret, JSON.stringify(data)):
 * - classic Webhooks: the JSON-stringified body
 *   (https://segment.com/docs/connections/destinations/catalog/webhooks/#authentication);
 * - Webhooks (Actions): `payload.length ? payload[0].data : payload.data`, so a batch is signed
 *   over its first event only (a proposed change signs the whole array)
 *   (https://github.com/segmentio/action-destinations/blob/main/packages/destination-actions/src/destinations/webhook/index.ts);
 * - Extensible Webhook: the same expression, so a batch of `{"json": event}` is signed over the
 *   first *unwrapped* event
 *   (https://github.com/segmentio/action-destinations/blob/main/packages/destination-actions/src/destinations/webhook-extensible/index.ts).
 * A signature that matches the raw body, the whole parsed body, its first element or that
 * element's `json` is accepted. The signature never covers the rest of a batch: see the README.
 */

const hmac = (secret: string, text: string): Buffer =>
  createHmac('sha1', secret).update(text, 'utf8').digest()

export const sign = (secret: string, text: string): string => hmac(secret, text).toString('hex')

const matches = (expected: Buffer, given: Buffer): boolean =>
  expected.length === given.length && timingSafeEqual(expected, given)

const firstElement = (parsed: unknown): unknown => {
  if (Array.isArray(parsed)) return parsed[0]
  const batch = (parsed as { batch?: unknown } | null)?.batch
  return Array.isArray(batch) ? batch[0] : undefined
}

/** The texts a genuine Segment signature may cover, cheapest first. */
export function* signedTexts(raw: string, parse: () => unknown): Generator<string> {
  yield raw
  let parsed: unknown
  try {
    parsed = parse()
  } catch {
    return
  }
  yield JSON.stringify(parsed)
  const first = firstElement(parsed)
  if (first === undefined) return
  yield JSON.stringify(first)
  const inner = (first as { json?: unknown } | null)?.json
  if (inner !== undefined) yield JSON.stringify(inner)
}

/** Constant-time check of a hex signature against every text Segment may have signed. */
export const verifySignature = (
  secret: string,
  signature: string,
  raw: string,
  parse: () => unknown,
): boolean => {
  const given = Buffer.from(signature.trim().toLowerCase(), 'hex')
  if (given.length === 0) return false
  for (const text of signedTexts(raw, parse)) {
    if (matches(hmac(secret, text), given)) return true
  }
  return false
}
