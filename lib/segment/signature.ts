import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * Segment signs with `X-Signature` = hex HMAC-SHA1(shared secret, JSON.stringify(body)). For a
 * batch it signs only `body[0]`, and a proposed change signs the whole array, so a signature
 * that matches the raw body, the whole parsed body or its first element is accepted.
 * https://segment.com/docs/connections/destinations/catalog/webhooks/#authentication
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
  if (first !== undefined) yield JSON.stringify(first)
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
