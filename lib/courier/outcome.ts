import type { EndpointClass } from './endpoint-class.ts'
import { parseRetryAfter } from './retry-after.ts'

/**
 * What one Courier answer means for the event, as data. The worker turns an Outcome into a queue
 * action (delete, hold back, retry with backoff, retry slowly, dead-letter) following the retry
 * table in README.md ("Retries and failures"); this module only decides the meaning.
 * Pure: no I/O, no clock except through parseRetryAfter's `now` default.
 */

export type Outcome =
  /** 2xx, or 409 on /inbound/*: Courier dedupes on messageId, so there a conflict means it already has the event. */
  | { readonly kind: 'delivered'; readonly status: number }
  /** 429: hold this message and the rest of the batch back, for Retry-After if Courier gave one. */
  | { readonly kind: 'rate-limited'; readonly status: 429; readonly retryAfterSeconds: number | undefined }
  /**
   * Try again later with backoff: 408, 409 outside /inbound, 5xx except 501, 1xx/3xx, timeouts,
   * resets, network failures. `retryAfterSeconds` when the answer said when (Courier's SDKs wait
   * for retry-after-ms / Retry-After on every retried answer, not only 429).
   */
  | {
      readonly kind: 'transient'
      readonly status: number | undefined
      readonly reason: string
      readonly retryAfterSeconds?: number
    }
  /** The credentials are wrong: retry slowly and log loudly, never drop an event for a config mistake. */
  | { readonly kind: 'auth'; readonly status: 401 | 403; readonly reason: string }
  /** Sending the same request again can never succeed: dead-letter it with the reason. */
  | { readonly kind: 'permanent'; readonly status: number; readonly reason: string }

export type OutcomeKind = Outcome['kind']
export type DeliveredOutcome = Extract<Outcome, { kind: 'delivered' }>
export type TransientOutcome = Extract<Outcome, { kind: 'transient' }>
/** Every outcome but delivered: what a CourierError can carry. */
export type FailedOutcome = Exclude<Outcome, { kind: 'delivered' }>

/** The fields of Courier's error body `{"message": "...", "type": "..."}` that we use. */
export interface CourierErrorBody {
  readonly message?: string
  readonly type?: string
}

/**
 * Courier's `message` and `type` from a parsed response body, when it has them as strings.
 * Anything else (text, HTML from a proxy, an array, nothing) yields undefined.
 */
export const readCourierErrorBody = (body: unknown): CourierErrorBody | undefined => {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined
  const { message, type } = body as Record<string, unknown>
  const read: { message?: string; type?: string } = {}
  if (typeof message === 'string' && message !== '') read.message = message
  if (typeof type === 'string' && type !== '') read.type = type
  return read.message === undefined && read.type === undefined ? undefined : read
}

/**
 * 4xx answers that RFC 9110/8470 define as "retry the same request later": 421 Misdirected
 * Request (retry on another connection) and 425 Too Early (retry after the handshake). They say
 * nothing about the event, so they are transient rather than the permanent default for 4xx.
 * https://www.rfc-editor.org/rfc/rfc9110#status.421 https://www.rfc-editor.org/rfc/rfc8470#section-5.2
 */
const RETRYABLE_4XX: ReadonlySet<number> = new Set([408, 421, 425])

/**
 * Courier's own verdict on retrying, from the `x-should-retry` header its SDKs obey before
 * looking at the status (courier-node `src/client.ts` shouldRetry: "If the server explicitly says
 * whether or not to retry, obey"; https://github.com/trycourier/courier-node/blob/main/src/client.ts).
 * Only the exact values `true` and `false` count, as there.
 */
export const shouldRetryHeader = (headers: Headers): boolean | undefined => {
  const value = headers.get('x-should-retry')
  return value === 'true' ? true : value === 'false' ? false : undefined
}

/**
 * The meaning of an HTTP answer, by status first and Courier's body only for the reason.
 *
 * 409 means two things at Courier: on the inbound endpoints a non-unique messageId, i.e.
 * Courier already took this event (delivered; https://www.courier.com/docs/reference/inbound/courier-track-event
 * answers a repeated messageId with 409); anywhere else a
 * concurrent modification conflict, which Courier's SDKs retry ("Retry on lock timeouts",
 * courier-node `src/client.ts`), so it is transient there: counting it delivered would lose a
 * tenant or list write without a trace.
 *
 * `x-should-retry` (Courier's verdict) overrides the status where it changes the meaning: `false`
 * turns a transient or rate-limited answer permanent (to the DLQ with the reason), `true` turns a
 * permanent one transient (retried with backoff). Two deliberate exceptions: a 2xx (or an inbound
 * 409) is delivered whatever the header says, and 401/403 stay `auth` (retried slowly and logged)
 * because a wrong token is our configuration mistake and must never cost an event.
 *
 * Deliberate choices beyond the design table:
 * - any 4xx not named there (410, 415, …) is permanent: a client error says the request is wrong,
 *   and resending identical bytes gives the identical answer; the DLQ keeps it for a redrive;
 * - 1xx and 3xx are transient: fetch never surfaces 1xx, and the client does not follow redirects
 *   (a followed 301/302 turns a POST into a GET and drops the body), so a 3xx is a misrouted base
 *   URL or proxy: a configuration problem, which must never cost an event;
 * - statuses outside 100–599 are transient for the same reason: not Courier talking.
 */
export const classifyStatus = (
  status: number,
  body: CourierErrorBody | undefined,
  headers: Headers,
  endpoint: EndpointClass,
): Outcome => {
  const outcome = withShouldRetry(classifyByStatus(status, body, headers, endpoint), status, body, headers)
  if (outcome.kind !== 'transient' || outcome.status === undefined) return outcome
  const retryAfterSeconds = parseRetryAfter(headers)
  return retryAfterSeconds === undefined ? outcome : { ...outcome, retryAfterSeconds }
}

const withShouldRetry = (
  byStatus: Outcome,
  status: number,
  body: CourierErrorBody | undefined,
  headers: Headers,
): Outcome => {
  const verdict = shouldRetryHeader(headers)
  if (verdict === undefined || byStatus.kind === 'delivered' || byStatus.kind === 'auth') return byStatus
  if (verdict && byStatus.kind === 'permanent') {
    return { kind: 'transient', status, reason: `${byStatus.reason} (x-should-retry: true)` }
  }
  if (!verdict && (byStatus.kind === 'transient' || byStatus.kind === 'rate-limited')) {
    const reason = body?.message ?? `HTTP ${status}`
    return { kind: 'permanent', status, reason: `${reason} (x-should-retry: false)` }
  }
  return byStatus
}

const classifyByStatus = (
  status: number,
  body: CourierErrorBody | undefined,
  headers: Headers,
  endpoint: EndpointClass,
): Outcome => {
  const reason = body?.message ?? `HTTP ${status}`
  if (status >= 200 && status <= 299) return { kind: 'delivered', status }
  if (status === 409) {
    return endpoint === 'inbound'
      ? { kind: 'delivered', status }
      : { kind: 'transient', status, reason: `${reason} (concurrent modification conflict)` }
  }
  if (status === 429) return { kind: 'rate-limited', status, retryAfterSeconds: parseRetryAfter(headers) }
  if (status === 401 || status === 403) return { kind: 'auth', status, reason }
  if (RETRYABLE_4XX.has(status)) return { kind: 'transient', status, reason }
  if (status === 501) return { kind: 'permanent', status, reason }
  if (status >= 400 && status <= 499) return { kind: 'permanent', status, reason }
  return { kind: 'transient', status, reason }
}

/**
 * Error codes of a connection that failed or broke before an answer arrived: Node's socket and
 * DNS errors and undici's (Node's fetch) `UND_ERR_*` family. Courier may or may not have seen the
 * request; either way resending is safe because Courier dedupes on messageId.
 * https://nodejs.org/api/errors.html#common-system-errors https://undici.nodejs.org/#/docs/api/Errors
 */
const TRANSPORT_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
])

/** Messages undici and Node use for broken transports, where there is no code. */
const TRANSPORT_MESSAGES: ReadonlySet<string> = new Set(['fetch failed', 'terminated', 'socket hang up'])

/** Names of errors that mean the wait ran out: ky's TimeoutError and DOMException('TimeoutError'). */
const TIMEOUT_NAMES: ReadonlySet<string> = new Set(['TimeoutError'])

/** Names of errors that mean the transport failed: ky's NetworkError and undici's socket errors. */
const TRANSPORT_NAMES: ReadonlySet<string> = new Set(['NetworkError', 'SocketError'])

interface ErrorLike {
  readonly name?: unknown
  readonly message?: unknown
  readonly code?: unknown
  readonly cause?: unknown
}

/** The error and its causes, outermost first (bounded: a cause cycle must not hang us). */
const causeChain = (error: unknown): ErrorLike[] => {
  const chain: ErrorLike[] = []
  const seen = new Set<unknown>()
  let current = error
  while (typeof current === 'object' && current !== null && chain.length < 8 && !seen.has(current)) {
    seen.add(current)
    chain.push(current)
    current = (current as ErrorLike).cause
  }
  return chain
}

const describe = (link: ErrorLike): string => {
  const code = typeof link.code === 'string' ? link.code : undefined
  const message = typeof link.message === 'string' ? link.message : undefined
  if (code !== undefined && message !== undefined && message !== '' && !message.includes(code)) {
    return `${code}: ${message}`
  }
  return message || code || 'unknown'
}

/** Why the transport failed, from the innermost error that says something specific. */
const transportReason = (chain: readonly ErrorLike[]): string => {
  const specific = [...chain]
    .reverse()
    .find((link) => typeof link.code === 'string' || TRANSPORT_NAMES.has(String(link.name)))
  return `network error: ${describe(specific ?? chain[chain.length - 1] ?? {})}`
}

/**
 * Whether an error is a timeout or a broken/failed connection, looking through `cause` the way
 * Node's fetch nests them (`TypeError: fetch failed` → `Error: connect ECONNREFUSED` …). The
 * principle is ky's: only failures recognised as the network's are retried; anything else (a
 * TypeError from our own code, a JSON bug) is a programming error that must surface, not be
 * retried for four days.
 */
export const isTransportError = (error: unknown): boolean =>
  causeChain(error).some((link) => {
    const name = String(link.name)
    if (TIMEOUT_NAMES.has(name) || TRANSPORT_NAMES.has(name)) return true
    if (
      typeof link.code === 'string' &&
      (TRANSPORT_CODES.has(link.code) || link.code.startsWith('UND_ERR_'))
    ) {
      return true
    }
    // undici reports transport failures as a plain TypeError with one of these fixed messages.
    return name === 'TypeError' && TRANSPORT_MESSAGES.has(String(link.message))
  })

/**
 * The outcome of a request that got no HTTP answer: always transient, with no status. An abort
 * (AbortError) also lands here: the caller gave up, so whether Courier got the event is unknown
 * and it must be retried.
 *
 * Throws `error` itself, unchanged, when it is neither a transport failure nor an abort: a bug
 * is not an outcome, and classifying it as transient would hide it behind endless retries.
 */
export const classifyError = (error: unknown): TransientOutcome => {
  const chain = causeChain(error)
  const timeout = chain.find((link) => TIMEOUT_NAMES.has(String(link.name)))
  if (timeout !== undefined) return { kind: 'transient', status: undefined, reason: 'timeout' }
  if (isTransportError(error)) return { kind: 'transient', status: undefined, reason: transportReason(chain) }
  if (chain.some((link) => link.name === 'AbortError')) {
    return { kind: 'transient', status: undefined, reason: 'request aborted' }
  }
  throw error
}
