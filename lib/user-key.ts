import { createHmac } from 'node:crypto'
import { getSecret } from '@aws-lambda-powertools/parameters/secrets'
import type { MiddlewareObj } from '@middy/core'
import { ConfigError } from './errors/config-error.ts'

/**
 * Pseudonymous user keys: how logs, reasons and metrics name a person without naming them.
 * A key is HMAC-SHA256(secret, id), hex, cut to 16 characters (64 bits: two people of a
 * hundred million share one with a chance of about 1 in 3,700), of the userId, else the
 * anonymousId, the person Courier's inbound endpoint picks. Without the secret a key cannot be
 * turned back into an id, nor an id guessed from a list of emails and checked against the logs.
 * https://www.rfc-editor.org/rfc/rfc2104 (HMAC), https://nodejs.org/api/crypto.html#class-hmac
 *
 * The secret is per stage: the deploy generates it in Secrets Manager and names it to the
 * functions (USER_KEY_SECRET_ARN); each instance reads it before its first event (the
 * userKeySecretLoader middleware) and again every SECRETS_CACHE_SECONDS. USER_KEY_SECRET gives
 * the value itself; without either (`npm start`, tests) the fixed DEV_USER_KEY_SECRET stands in,
 * so a local trace needs no setup. Also here: the few texts that could carry an id
 * into a log line (Courier paths, JSON parse errors, a value Segment got wrong), made safe.
 */

/** The local secret, used when USER_KEY_SECRET is not set: keys made with it protect nothing. */
export const DEV_USER_KEY_SECRET = 'segment-courier-relay-local-dev-key'
export const USER_KEY_VARIABLE = 'USER_KEY_SECRET'
export const USER_KEY_ARN_VARIABLE = 'USER_KEY_SECRET_ARN'
const KEY_CHARS = 16
const PREFIX = 'u_'

export type UserKeyOf = (id: string) => string

/** The keyed hash of one id: `u_` and 16 hex characters. */
export const userKeyWith =
  (secret: string): UserKeyOf =>
  (id) =>
    `${PREFIX}${createHmac('sha256', secret).update(id, 'utf8').digest('hex').slice(0, KEY_CHARS)}`

/** A user key, as logged (so a CLI can tell a key it is given from an id). */
export const isUserKey = (text: string): boolean => new RegExp(`^${PREFIX}[0-9a-f]{${KEY_CHARS}}$`).test(text)

/** The secret from the environment (the stage's, deployed), else the fixed local one. */
export const userKeySecret = (env: Readonly<Record<string, string | undefined>>): string =>
  env[USER_KEY_VARIABLE]?.trim() || DEV_USER_KEY_SECRET

let cached: { secret: string; keyOf: UserKeyOf } | undefined
/** The stage's secret as last read from Secrets Manager, when USER_KEY_SECRET_ARN names it. */
let loaded: string | undefined

/**
 * A middy middleware for each function: reads the secret USER_KEY_SECRET_ARN names (Powertools
 * Parameters, cached `maxAgeSeconds`) before the handler runs, so userKey stays synchronous. A
 * secret that cannot be read fails the invocation (retried), as a missing Courier token does:
 * logging with a wrong key would make the stage's logs untraceable.
 * https://docs.powertools.aws.dev/lambda/typescript/latest/features/parameters/#fetching-secrets
 */
export const userKeySecretLoader = (maxAgeSeconds: number): MiddlewareObj => ({
  before: async () => {
    const arn = process.env[USER_KEY_ARN_VARIABLE]?.trim()
    if (!arn) return
    let value: string | undefined
    try {
      value = (await getSecret<string>(arn, { maxAge: maxAgeSeconds })) ?? undefined
    } catch (error) {
      throw new ConfigError(
        USER_KEY_ARN_VARIABLE,
        `secret ${arn} could not be read: ${(error as Error).message}`,
        { cause: error },
      )
    }
    if (typeof value !== 'string' || value === '') {
      throw new ConfigError(USER_KEY_ARN_VARIABLE, `secret ${arn} is missing or empty`)
    }
    loaded = value
  },
})

/** The key of `id` with this process's secret; undefined for no id. */
export const userKey = (id: string | undefined): string | undefined => {
  if (id === undefined) return undefined
  const secret = loaded ?? userKeySecret(process.env)
  if (cached?.secret !== secret) cached = { secret, keyOf: userKeyWith(secret) }
  return cached.keyOf(id)
}

const segmentText = (segment: string): string => {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

/**
 * A Courier path as logged: every segment that names a person (or a tenant, which Segment's
 * groupId may make an email too) replaced by its key; the list ids the relay builds from Engage's
 * computation key and id stay, as do Courier's own words. A path of any other shape keeps only
 * its first segment. Courier's routes: https://www.courier.com/docs/reference/
 */
export const pathForLog = (path: string): string => {
  const [route = '', ...rest] = path.split('?')[0]?.split('/').slice(1) ?? []
  // A segment already keyed stays as it is, so a reason made safe once can pass through again.
  const key = (segment: string | undefined) =>
    segment === undefined ? '' : `/${isUserKey(segment) ? segment : userKey(segmentText(segment))}`
  const word = (segment: string | undefined, expected: string) =>
    segment === expected ? `/${expected}` : segment === undefined ? '' : '/…'
  switch (route) {
    case 'inbound':
    case 'debug':
      return path.split('?')[0] ?? path
    case 'profiles':
      return `/profiles${key(rest[0])}${word(rest[1], 'lists')}${rest.length > 2 ? '/…' : ''}`
    case 'users':
      return `/users${key(rest[0])}${word(rest[1], 'tenants')}${key(rest[2])}${rest.length > 3 ? '/…' : ''}`
    case 'tenants':
      return `/tenants${key(rest[0])}${rest.length > 1 ? '/…' : ''}`
    case 'lists':
      return `/lists${rest[0] === undefined ? '' : `/${rest[0]}`}${word(rest[1], 'subscriptions')}${key(rest[2])}${rest.length > 3 ? '/…' : ''}`
    default:
      return `/${route}${rest.length > 0 ? '/…' : ''}`
  }
}

/** Replaces every Courier path inside a reason or message (`(DELETE /users/…/tenants)`) with pathForLog's. */
export const pathsForLog = (text: string): string =>
  text.replace(/\/(?:profiles|users|tenants|lists)\/[^\s)]*/g, (path) => pathForLog(path))

/**
 * JSON.parse's message without the text it quotes: V8 echoes part of the input
 * (`Unexpected token 'j', "jane@example.com" is not valid JSON`); only the position is kept.
 */
export const jsonErrorForLog = (error: unknown): string => {
  const message = error instanceof Error ? error.message : String(error)
  const position = /position (\d+)/.exec(message)?.[1]
  if (/Unexpected end of JSON input/.test(message)) return 'unexpected end of JSON input'
  return position === undefined ? 'malformed JSON' : `malformed JSON at position ${position}`
}

/** What a value is, never what it holds: for reasons that must say why a field is wrong. */
export const describeValue = (value: unknown): string => {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return `an array of ${value.length}`
  if (typeof value === 'string')
    return `a string of ${value.length} character${value.length === 1 ? '' : 's'}`
  return `a ${typeof value}`
}

const EMAIL = /[^\s@"'<>(),;:]+@[^\s@"'<>(),;:]+\.[A-Za-z]{2,}/g
/** E.164: a plus and 8 to 15 digits. https://www.itu.int/rec/T-REC-E.164 */
const PHONE = /\+\d{8,15}\b/g

/**
 * A reason or message as it may be logged or stored as a dead letter's reason: Courier paths
 * keyed (pathsForLog), and any email address or E.164 phone number that Courier's answer (or an
 * error) quoted replaced by a placeholder.
 */
export const textForLog = (text: string): string =>
  pathsForLog(text).replace(EMAIL, '<email>').replace(PHONE, '<phone>')
