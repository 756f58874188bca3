import { timingSafeEqual } from 'node:crypto'
import { HttpError } from '../errors/http-error.ts'
import { verifySignature } from '../segment/signature.ts'

/**
 * Who may post events. Segment signs with a shared secret (`X-Signature`); setups without
 * signing send a bearer token as a custom `Authorization` header. Every credential a request
 * presents must be valid and at least one must be presented; with neither configured the relay
 * is open (local runs) and says so loudly at start.
 */

export interface IngestCredentials {
  readonly sharedSecret: string | undefined
  readonly token: string | undefined
}

export type AuthMethod = 'signature' | 'token' | 'open'

type Headers = Readonly<Record<string, string | undefined>>

const header = (headers: Headers, name: string): string | undefined => {
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value
  return undefined
}

const sameSecret = (expected: string, given: string): boolean => {
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  // Compare against itself on a length mismatch so the time taken does not depend on the guess.
  return a.length === b.length ? timingSafeEqual(a, b) : !timingSafeEqual(a, a)
}

const bearer = (authorization: string): string => authorization.replace(/^\s*bearer\s+/i, '').trim()

export const authenticate = (
  credentials: IngestCredentials,
  headers: Headers,
  body: string,
  parse: () => unknown,
): AuthMethod => {
  const { sharedSecret, token } = credentials
  if (sharedSecret === undefined && token === undefined) return 'open'
  const signature = sharedSecret !== undefined ? header(headers, 'x-signature') : undefined
  const authorization = token !== undefined ? header(headers, 'authorization') : undefined
  if (signature === undefined && authorization === undefined) {
    const expected = [
      sharedSecret !== undefined ? 'X-Signature (HMAC-SHA1 of the body with the shared secret)' : undefined,
      token !== undefined ? 'Authorization: Bearer <INGEST_TOKEN>' : undefined,
    ].filter(Boolean)
    throw new HttpError(401, `missing credentials: send ${expected.join(' or ')}`)
  }
  if (authorization !== undefined && !sameSecret(token as string, bearer(authorization))) {
    throw new HttpError(401, 'Authorization token does not match')
  }
  if (signature !== undefined && !verifySignature(sharedSecret as string, signature, body, parse)) {
    throw new HttpError(401, 'X-Signature does not match the body')
  }
  return signature !== undefined ? 'signature' : 'token'
}
