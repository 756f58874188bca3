import {
  courierError,
  isConflictableWrite,
  isJsonObject,
  isListWrite,
  type SandboxAnswer,
} from './sandbox-courier.ts'

/**
 * The Courier sandbox's knobs: faults to rehearse 429 storms, 5xx, conflicts, slow answers, resets
 * and outages, plus Courier's published list-write limit and targeted one-off failures. Knobs are
 * validated as a whole before any is applied: an unknown knob or a wrong value is refused with a
 * message naming it, so a typo never silently does nothing.
 */

/** A one-off answer for the next matching request(s), e.g. one step of a deletion failing once. */
export interface FailRule {
  /** Matches this method only (any method when absent). */
  method?: string
  /** The decoded request path, e.g. `/users/u-1/tenants`. */
  path: string
  /** The status to answer, or 'drop' to destroy the connection without an answer. */
  status: number | 'drop'
  /** How many matching requests it answers (default 1). */
  times?: number
  /** Extra response headers, e.g. `{"x-should-retry": "false"}`. */
  headers?: Record<string, string>
  /** Response body; default `{message, type}` for the status. */
  body?: unknown
}

export interface SandboxFaults {
  /** 0..1 share of API requests answered 429. */
  rateLimitShare: number
  /** What a 429 carries: nothing, Retry-After seconds, retry-after-ms, or Retry-After as an HTTP date (seconds from now). */
  retryAfter: 'none' | { seconds: number } | { ms: number } | { date: number }
  /** 0..1 share answered 500/503 api_error. */
  serverErrorShare: number
  /** 0..1 share of writes outside /inbound/ answered 409 (Courier's concurrent-modification conflict). */
  conflictShare: number
  /** 0..1 share whose connection is destroyed without an answer. */
  dropShare: number
  /** Delay before answering every API request. */
  latencyMs: number
  /** Requests per second accepted (a 1-second window); the excess gets 429. undefined (JSON null): no limit. */
  maxRps: number | undefined
  /**
   * Courier's published list-write limit (see `isListWrite`): at most this many list writes in
   * any 60 s; the excess gets 429. Default 20, as published. undefined (JSON null): no limit.
   */
  listWritesPerMinute: number | undefined
  /** Most recipients per bulk subscription call; undefined (JSON null, the default): none, as Courier publishes none. */
  maxRecipientsPerCall: number | undefined
  /** Courier down: every API request gets 503, or with outageMode 'refuse' its connection is destroyed. */
  outage: boolean
  outageMode: 'error' | 'refuse'
  /** One-off answers, consumed in order by the requests they match (before any other fault). */
  failNext: FailRule[]
}

export const HEALTHY_FAULTS: Readonly<SandboxFaults> = Object.freeze({
  rateLimitShare: 0,
  retryAfter: 'none',
  serverErrorShare: 0,
  conflictShare: 0,
  dropShare: 0,
  latencyMs: 0,
  maxRps: undefined,
  listWritesPerMinute: 20,
  maxRecipientsPerCall: undefined,
  outage: false,
  outageMode: 'error',
  failNext: [],
})

/** A knob that cannot be applied, with the message naming it. */
export class FaultKnobError extends Error {
  readonly statusCode = 400
}

const isFiniteNumber = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value)

type Check = (value: unknown) => string | undefined

const share: Check = (value) =>
  isFiniteNumber(value) && value >= 0 && value <= 1 ? undefined : 'must be a number from 0 to 1'
const nonNegative: Check = (value) =>
  isFiniteNumber(value) && value >= 0 ? undefined : 'must be a number ≥ 0'
const positiveOrOff: Check = (value) =>
  value === undefined || value === null || (isFiniteNumber(value) && value > 0)
    ? undefined
    : 'must be a number > 0, or null for no limit'
const positiveIntegerOrOff: Check = (value) =>
  value === undefined || value === null || (Number.isInteger(value) && (value as number) > 0)
    ? undefined
    : 'must be an integer > 0, or null for no limit'

const retryAfter: Check = (value) => {
  const allowed = 'must be "none", {"seconds": n}, {"ms": n} or {"date": n} (n a number ≥ 0)'
  if (value === 'none') return undefined
  if (!isJsonObject(value)) return allowed
  const keys = Object.keys(value)
  const [key] = keys
  if (keys.length !== 1 || (key !== 'seconds' && key !== 'ms' && key !== 'date')) return allowed
  return isFiniteNumber(value[key]) && value[key] >= 0 ? undefined : allowed
}

const FAIL_RULE_KEYS = new Set(['method', 'path', 'status', 'times', 'headers', 'body'])

const failNext: Check = (value) => {
  if (!Array.isArray(value)) return 'must be an array of {method?, path, status, times?, headers?, body?}'
  for (const [index, rule] of value.entries()) {
    const at = `[${index}]`
    if (!isJsonObject(rule)) return `${at} must be an object {method?, path, status, times?, headers?, body?}`
    const unknown = Object.keys(rule).find((key) => !FAIL_RULE_KEYS.has(key))
    if (unknown !== undefined) return `${at} has an unknown field "${unknown}"`
    if (typeof rule.path !== 'string' || !rule.path.startsWith('/'))
      return `${at}.path must be a path starting with /`
    if (rule.method !== undefined && typeof rule.method !== 'string') return `${at}.method must be a string`
    const status = rule.status
    if (
      status !== 'drop' &&
      !(isFiniteNumber(status) && Number.isInteger(status) && status >= 100 && status <= 599)
    )
      return `${at}.status must be an HTTP status (100-599) or "drop"`
    if (
      rule.times !== undefined &&
      !(isFiniteNumber(rule.times) && Number.isInteger(rule.times) && rule.times > 0)
    )
      return `${at}.times must be an integer > 0`
    if (
      rule.headers !== undefined &&
      !(
        isJsonObject(rule.headers) &&
        Object.values(rule.headers).every((header) => typeof header === 'string')
      )
    )
      return `${at}.headers must be an object of strings`
  }
  return undefined
}

const KNOBS: Readonly<Record<keyof SandboxFaults, Check>> = {
  rateLimitShare: share,
  retryAfter,
  serverErrorShare: share,
  conflictShare: share,
  dropShare: share,
  latencyMs: nonNegative,
  maxRps: positiveOrOff,
  listWritesPerMinute: positiveIntegerOrOff,
  maxRecipientsPerCall: positiveIntegerOrOff,
  outage: (value) => (typeof value === 'boolean' ? undefined : 'must be true or false'),
  outageMode: (value) =>
    value === 'error' || value === 'refuse' ? undefined : 'must be "error" or "refuse"',
  failNext,
}

export const KNOB_NAMES = Object.keys(KNOBS) as (keyof SandboxFaults)[]

/**
 * Pure: the knobs in `input` checked and normalised (null → undefined for the limits; a fail rule
 * gets its method upper-cased and `times` filled in), or a FaultKnobError naming every bad knob.
 */
export const parseFaults = (input: unknown): Partial<SandboxFaults> => {
  if (!isJsonObject(input))
    throw new FaultKnobError(`faults must be a JSON object of knobs (${KNOB_NAMES.join(', ')})`)
  const problems: string[] = []
  const parsed: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(input)) {
    const check = Object.hasOwn(KNOBS, name) ? KNOBS[name as keyof SandboxFaults] : undefined
    if (check === undefined) {
      problems.push(`unknown knob "${name}" (known: ${KNOB_NAMES.join(', ')})`)
      continue
    }
    const problem = check(value)
    if (problem !== undefined)
      problems.push(`${name} ${problem} (got ${JSON.stringify(value) ?? 'undefined'})`)
    else parsed[name] = value === null ? undefined : value
  }
  if (problems.length > 0) throw new FaultKnobError(problems.join('; '))
  if (Array.isArray(parsed.failNext))
    parsed.failNext = (parsed.failNext as FailRule[]).map((rule) => ({
      ...rule,
      ...(rule.method === undefined ? {} : { method: rule.method.toUpperCase() }),
      times: rule.times ?? 1,
    }))
  return parsed as Partial<SandboxFaults>
}

/** The knobs as JSON (undefined limits shown as null), for GET /_sandbox/faults. */
export const faultsAsJson = (faults: SandboxFaults) =>
  Object.fromEntries(KNOB_NAMES.map((name) => [name, faults[name] ?? null]))

export const retryAfterHeaders = (
  retryAfter: SandboxFaults['retryAfter'],
  now: number,
): Record<string, string> => {
  if (retryAfter === 'none') return {}
  if ('seconds' in retryAfter) return { 'retry-after': String(retryAfter.seconds) }
  if ('ms' in retryAfter) return { 'retry-after-ms': String(retryAfter.ms) }
  return { 'retry-after': new Date(now + retryAfter.date * 1_000).toUTCString() }
}

const defaultBody = (status: number) => {
  if (status === 409) return { message: 'Conflict', type: 'invalid_request_error' }
  if (status === 429) return { message: 'Too Many Requests', type: 'rate_limit_error' }
  if (status >= 500) return { message: 'Internal Server Error', type: 'api_error' }
  return { message: `Error ${status}`, type: 'invalid_request_error' }
}

export interface FaultInjector {
  /** The fault this request meets, if any: undefined lets it through to Courier's route. */
  readonly decide: (method: string, path: string) => SandboxAnswer | 'drop' | undefined
  /** Clears the windows (rps, list writes). */
  readonly reset: () => void
}

const LIST_WINDOW_MS = 60_000

/**
 * Applies the knobs to each API request. `faults` is read live, so a knob changed with curl
 * applies to the next request.
 */
export const createFaultInjector = (
  faults: SandboxFaults,
  random: () => number,
  now: () => number,
): FaultInjector => {
  let rpsWindow = { second: 0, count: 0 }
  /** When each list write in the last 60 s was let through. */
  let listWrites: number[] = []

  const overRps = () => {
    if (faults.maxRps === undefined) return false
    const second = Math.floor(now() / 1_000)
    if (second !== rpsWindow.second) rpsWindow = { second, count: 0 }
    rpsWindow.count++
    return rpsWindow.count > faults.maxRps
  }

  // The types of the sandbox's 429 (rate_limit_error), 5xx (api_error) and 401
  // (authentication_error) bodies are the sandbox's own: Courier publishes `{message, type}` as the
  // error shape but names only invalid_request_error. Clients should read the status, not the type.
  const rateLimited = () => ({
    ...courierError(429, 'Too Many Requests', 'rate_limit_error'),
    headers: retryAfterHeaders(faults.retryAfter, now()),
  })

  /**
   * Courier publishes "20 creations per minute" for list writes and nothing more: not the kind of
   * window, not whether it is per workspace or per list, not the 429's body or headers. The
   * sandbox assumes a sliding 60-second window over the whole workspace (one sandbox), counts
   * only the writes it lets through, and answers the excess like any other 429: the `retryAfter`
   * knob's header, none by default, since Courier publishes no Retry-After for it.
   */
  const overListLimit = (method: string, path: string) => {
    if (faults.listWritesPerMinute === undefined || !isListWrite(method, path)) return false
    const at = now()
    listWrites = listWrites.filter((time) => at - time < LIST_WINDOW_MS)
    if (listWrites.length >= faults.listWritesPerMinute) return true
    listWrites.push(at)
    return false
  }

  const failRule = (method: string, path: string): SandboxAnswer | 'drop' | undefined => {
    const decoded = decodeURIComponent(path)
    const index = faults.failNext.findIndex(
      (rule) => rule.path === decoded && (rule.method === undefined || rule.method === method),
    )
    const rule = faults.failNext[index]
    if (rule === undefined) return undefined
    const times = (rule.times ?? 1) - 1
    if (times <= 0) faults.failNext.splice(index, 1)
    else rule.times = times
    if (rule.status === 'drop') return 'drop'
    return {
      status: rule.status,
      body: rule.body === undefined ? defaultBody(rule.status) : rule.body,
      ...(rule.headers === undefined ? {} : { headers: rule.headers }),
    }
  }

  return {
    decide: (method, path) => {
      const targeted = failRule(method, path)
      if (targeted !== undefined) return targeted
      if (faults.outage) {
        return faults.outageMode === 'refuse' ? 'drop' : courierError(503, 'Service Unavailable', 'api_error')
      }
      if (random() < faults.dropShare) return 'drop'
      if (overRps() || random() < faults.rateLimitShare) return rateLimited()
      if (random() < faults.serverErrorShare) {
        return random() < 0.5
          ? courierError(500, 'Internal Server Error', 'api_error')
          : courierError(503, 'Service Unavailable', 'api_error')
      }
      // Courier's SDKs retry 409 as a lock timeout (courier-node src/client.ts shouldRetry:
      // "Retry on lock timeouts"); its body for this case is not published.
      if (isConflictableWrite(method, path) && random() < faults.conflictShare)
        return courierError(409, 'Conflict: concurrent modification', 'invalid_request_error')
      if (overListLimit(method, path)) return rateLimited()
      return undefined
    },
    reset: () => {
      rpsWindow = { second: 0, count: 0 }
      listWrites = []
    },
  }
}
