import * as v from 'valibot'
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
  /** 0..1 share answered 500 or 503 api_error, the two taking turns (so any two show both). */
  serverErrorShare: number
  /** 0..1 share of writes outside /inbound/ answered 409 (Courier's concurrent-modification conflict). */
  conflictShare: number
  /** 0..1 share whose connection is destroyed without an answer. */
  dropShare: number
  /** Delay before answering every API request. */
  latencyMs: number
  /** Extra delay for the API requests of a method, on top of latencyMs, e.g. `{"GET": 150}` (slow reads). */
  methodLatencyMs: Record<string, number>
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
  methodLatencyMs: {},
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

const number = v.pipe(v.number(), v.finite())

const share = [v.pipe(number, v.minValue(0), v.maxValue(1)), 'must be a number from 0 to 1'] as const
const nonNegative = [v.pipe(number, v.minValue(0)), 'must be a number ≥ 0'] as const
/** A limit: null (JSON) switches it off, which the knobs hold as undefined. */
const orOff = (schema: v.GenericSchema<unknown, number>) =>
  v.pipe(
    v.nullable(schema),
    v.transform((value): number | undefined => value ?? undefined),
  )
const positiveOrOff = [
  orOff(v.pipe(number, v.gtValue(0))),
  'must be a number > 0, or null for no limit',
] as const
const positiveIntegerOrOff = [
  orOff(v.pipe(number, v.integer(), v.gtValue(0))),
  'must be an integer > 0, or null for no limit',
] as const

const atLeastZero = v.pipe(number, v.minValue(0))
const methodLatency = [
  v.pipe(
    v.record(v.string(), atLeastZero),
    v.transform((byMethod) =>
      Object.fromEntries(Object.entries(byMethod).map(([method, ms]) => [method.toUpperCase(), ms])),
    ),
  ),
  'must be an object of method → number ≥ 0, e.g. {"GET": 150}',
] as const
const retryAfter = [
  v.union([
    v.literal('none'),
    v.strictObject({ seconds: atLeastZero }),
    v.strictObject({ ms: atLeastZero }),
    v.strictObject({ date: atLeastZero }),
  ]),
  'must be "none", {"seconds": n}, {"ms": n} or {"date": n} (n a number ≥ 0)',
] as const

const RULE_SHAPE = '{method?, path, status, times?, headers?, body?}'

/** One fail rule; each field's message is written as `[index].field …` by failNextProblem. */
const FAIL_RULE = v.strictObject({
  method: v.optional(v.pipe(v.string('must be a string'), v.toUpperCase())),
  path: v.pipe(
    v.string('must be a path starting with /'),
    v.startsWith('/', 'must be a path starting with /'),
  ),
  status: v.union(
    [v.literal('drop'), v.pipe(number, v.integer(), v.minValue(100), v.maxValue(599))],
    'must be an HTTP status (100-599) or "drop"',
  ),
  times: v.optional(
    v.pipe(number, v.integer('must be an integer > 0'), v.gtValue(0, 'must be an integer > 0')),
    1,
  ),
  headers: v.optional(v.record(v.string(), v.string(), 'must be an object of strings')),
  body: v.optional(v.unknown()),
})

const failNext = [
  v.array(FAIL_RULE, `must be an array of ${RULE_SHAPE}`),
  `must be an array of ${RULE_SHAPE}`,
] as const

/** Each knob: its schema and, for any value it refuses, what is allowed. */
const KNOBS = {
  rateLimitShare: share,
  retryAfter,
  serverErrorShare: share,
  conflictShare: share,
  dropShare: share,
  latencyMs: nonNegative,
  methodLatencyMs: methodLatency,
  maxRps: positiveOrOff,
  listWritesPerMinute: positiveIntegerOrOff,
  maxRecipientsPerCall: positiveIntegerOrOff,
  outage: [v.boolean(), 'must be true or false'],
  outageMode: [v.picklist(['error', 'refuse']), 'must be "error" or "refuse"'],
  failNext,
} as const satisfies Record<keyof SandboxFaults, readonly [v.GenericSchema, string]>

export const KNOB_NAMES = Object.keys(KNOBS) as (keyof SandboxFaults)[]

/** Every knob optional: a POST sets the ones it names. */
const FAULTS = v.object(
  Object.fromEntries(KNOB_NAMES.map((name) => [name, v.optional(KNOBS[name][0])])) as {
    [K in keyof typeof KNOBS]: v.OptionalSchema<(typeof KNOBS)[K][0], undefined>
  },
)

/** A fail rule's problem as `[index].field must …` (or `[index] …` for the rule as a whole). */
const failNextProblem = (issue: v.BaseIssue<unknown>): string => {
  const [, index, field] = issue.path ?? []
  if (index === undefined) return `must be an array of ${RULE_SHAPE}`
  const at = `[${String(index.key)}]`
  if (field === undefined) {
    return issue.kind === 'schema' && issue.type === 'strict_object' && issue.expected === 'never'
      ? `${at} has an unknown field "${String(issue.input)}"`
      : `${at} must be an object ${RULE_SHAPE}`
  }
  if (field.key === 'times') return `${at}.times must be an integer > 0`
  return `${at}.${String(field.key)} ${issue.message.startsWith('must') ? issue.message : 'is invalid'}`
}

/**
 * Pure: the knobs in `input` checked and normalised (null → undefined for the limits; a fail rule
 * gets its method upper-cased and `times` filled in), or a FaultKnobError naming every bad knob.
 */
export const parseFaults = (input: unknown): Partial<SandboxFaults> => {
  if (!isJsonObject(input))
    throw new FaultKnobError(`faults must be a JSON object of knobs (${KNOB_NAMES.join(', ')})`)
  const problems = Object.keys(input)
    .filter((name) => !Object.hasOwn(KNOBS, name))
    .map((name) => `unknown knob "${name}" (known: ${KNOB_NAMES.join(', ')})`)
  const result = v.safeParse(FAULTS, input)
  const named = new Set<string>()
  for (const issue of result.issues ?? []) {
    const name = String(issue.path?.[0]?.key)
    if (named.has(name)) continue // one line per knob
    named.add(name)
    const problem = name === 'failNext' ? failNextProblem(issue) : KNOBS[name as keyof SandboxFaults][1]
    problems.push(`${name} ${problem} (got ${JSON.stringify(input[name]) ?? 'undefined'})`)
  }
  if (problems.length > 0 || !result.success) throw new FaultKnobError(problems.join('; '))
  // Knobs absent from the input are absent from the output; a null limit is present as undefined.
  return Object.fromEntries(
    Object.entries(result.output).filter(([name]) => Object.hasOwn(input, name)),
  ) as Partial<SandboxFaults>
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
  let serverErrors = 0
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
        serverErrors += 1
        return serverErrors % 2 === 1
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
