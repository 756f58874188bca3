import { timingSafeEqual } from 'node:crypto'
import { HttpError } from '../errors/http-error.ts'
import { verifySignature } from '../segment/signature.ts'

/**
 * Who may post events. Segment signs with a shared secret (`X-Signature`); a bearer token can be
 * added to the webhook as a custom `Authorization` header. Each configured credential is
 * required: with both a secret and a token a request must carry a valid signature **and** the
 * token (Webhooks (Actions) signs only the first event of a batch, so the token is what covers
 * the rest of the body). With neither configured the relay is open (local runs) and says so.
 *
 * Rotation: while a previous secret or token is configured, a request may use either the current
 * or the previous one, so Segment's settings can be switched without refusing a request.
 * https://segment.com/docs/connections/destinations/catalog/actions-webhook/#authentication
 */

export interface IngestCredentials {
  readonly sharedSecret: string | undefined
  readonly token: string | undefined
  /** Also accepted during a rotation window (SEGMENT_SHARED_SECRET_PREVIOUS). */
  readonly previousSharedSecret?: string | undefined
  /** Also accepted during a rotation window (INGEST_TOKEN_PREVIOUS). */
  readonly previousToken?: string | undefined
}

export type AuthMethod = 'signature' | 'token' | 'signature+token' | 'open'

export interface AuthResult {
  readonly method: AuthMethod
  /** Credentials the request passed with only their previous value: Segment still uses them. */
  readonly previous: readonly ('sharedSecret' | 'token')[]
}

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

type Match = 'current' | 'previous' | 'none'

const matchEither = (
  current: string,
  previous: string | undefined,
  check: (secret: string) => boolean,
): Match => {
  if (check(current)) return 'current'
  return previous !== undefined && check(previous) ? 'previous' : 'none'
}

const SIGNATURE_HINT = 'X-Signature (HMAC-SHA1 of the body with the shared secret)'
const TOKEN_HINT = 'Authorization: Bearer <INGEST_TOKEN>'

export const authenticate = (
  credentials: IngestCredentials,
  headers: Headers,
  body: string,
  parse: () => unknown,
): AuthResult => {
  const { sharedSecret, token } = credentials
  if (sharedSecret === undefined && token === undefined) return { method: 'open', previous: [] }
  const signature = sharedSecret !== undefined ? header(headers, 'x-signature') : undefined
  const authorization = token !== undefined ? header(headers, 'authorization') : undefined
  const missing = [
    sharedSecret !== undefined && signature === undefined ? SIGNATURE_HINT : undefined,
    token !== undefined && authorization === undefined ? TOKEN_HINT : undefined,
  ].filter((hint) => hint !== undefined)
  if (missing.length > 0) {
    const both = sharedSecret !== undefined && token !== undefined
    throw new HttpError(
      401,
      `missing credentials: send ${missing.join(' and ')}${both ? ' (this relay requires both the signature and the token)' : ''}`,
    )
  }
  const previous: ('sharedSecret' | 'token')[] = []
  if (token !== undefined) {
    const given = bearer(authorization as string)
    const match = matchEither(token, credentials.previousToken, (candidate) => sameSecret(candidate, given))
    if (match === 'none') throw new HttpError(401, 'Authorization token does not match')
    if (match === 'previous') previous.push('token')
  }
  if (sharedSecret !== undefined) {
    const match = matchEither(sharedSecret, credentials.previousSharedSecret, (candidate) =>
      verifySignature(candidate, signature as string, body, parse),
    )
    if (match === 'none') throw new HttpError(401, 'X-Signature does not match the body')
    if (match === 'previous') previous.push('sharedSecret')
  }
  const method: AuthMethod =
    sharedSecret !== undefined && token !== undefined
      ? 'signature+token'
      : sharedSecret !== undefined
        ? 'signature'
        : 'token'
  return { method, previous }
}
