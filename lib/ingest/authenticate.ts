import { timingSafeEqual } from 'node:crypto'
import { HttpError } from '../errors/http-error.ts'
import {
  parseSignature,
  type SignatureCoverage,
  type SignedCandidates,
  signatureCoverage,
} from '../segment/signature.ts'

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
  readonly coverage: Coverage
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

/** Which events of the request the credentials cover (lib/segment/signature.ts). */
export type Coverage =
  /** Every event, as the body reads. */
  | { readonly covers: 'request' }
  /** Every event, as `signedText` (the re-serialised body the signature was computed over) reads. */
  | { readonly covers: 'signed-text'; readonly signedText: string }
  /**
   * Only a batch's first event, as `signedText` (that event's text) reads: the shared secret alone,
   * and Segment signing a batch that way.
   */
  | { readonly covers: 'first-event'; readonly signedText: string }

const fromSignature = (coverage: Exclude<SignatureCoverage, { covers: 'nothing' }>): Coverage => {
  switch (coverage.covers) {
    case 'body':
      return { covers: 'request' }
    case 'parsed':
      return { covers: 'signed-text', signedText: coverage.signedText }
    default:
      return { covers: 'first-event', signedText: coverage.signedText }
  }
}

/**
 * Checks every configured credential; 401 naming what is wrong otherwise. The token is checked
 * first (a comparison), then the signature: its form, then the raw body, and only then the
 * parsed body's texts (one parse, shared through `candidates`).
 */
export const authenticate = (
  credentials: IngestCredentials,
  headers: Headers,
  candidates: SignedCandidates,
): AuthResult => {
  const { sharedSecret, token } = credentials
  if (sharedSecret === undefined && token === undefined) {
    return { method: 'open', previous: [], coverage: { covers: 'request' } }
  }
  const signatureHeader = sharedSecret !== undefined ? header(headers, 'x-signature') : undefined
  const authorization = token !== undefined ? header(headers, 'authorization') : undefined
  const missing = [
    sharedSecret !== undefined && signatureHeader === undefined ? SIGNATURE_HINT : undefined,
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
  let signed: SignatureCoverage = { covers: 'nothing' }
  if (sharedSecret !== undefined) {
    const signature = parseSignature(signatureHeader as string)
    if (signature === undefined) {
      throw new HttpError(401, 'X-Signature must be 40 hexadecimal characters (HMAC-SHA1 of the body)')
    }
    signed = signatureCoverage(sharedSecret, signature, candidates)
    const previousSecret = credentials.previousSharedSecret
    if (signed.covers === 'nothing' && previousSecret !== undefined) {
      signed = signatureCoverage(previousSecret, signature, candidates)
      if (signed.covers !== 'nothing') previous.push('sharedSecret')
    }
    if (signed.covers === 'nothing') throw new HttpError(401, 'X-Signature does not match the body')
  }
  const method: AuthMethod =
    sharedSecret !== undefined && token !== undefined
      ? 'signature+token'
      : sharedSecret !== undefined
        ? 'signature'
        : 'token'
  // The token covers the whole request; a signature alone covers what it was computed over.
  const coverage: Coverage =
    token !== undefined || signed.covers === 'nothing' ? { covers: 'request' } : fromSignature(signed)
  return { method, previous, coverage }
}
