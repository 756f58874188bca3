import ky, { isTimeoutError } from 'ky'
import pkg from '../../package.json' with { type: 'json' }
import { endpointClassOf } from './endpoint-class.ts'
import { classifyError, classifyStatus, type Outcome, readCourierErrorBody } from './outcome.ts'
import type { CourierRequest } from './routing.ts'

/**
 * One HTTP call to Courier, made once, turned into an Outcome. Deliberately no retries here (ky's
 * retry is off): the SQS queue is the retry mechanism, with backoff that outlasts a 24 h outage
 * (README.md, "Retries and failures"); a retry inside a Lambda would only burn its deadline
 * and multiply load on a Courier that is already struggling.
 *
 * `send` never throws for anything Courier or the network did: every HTTP answer goes through
 * classifyStatus, every timeout/reset/refusal through classifyError (transient, status
 * undefined). What does throw is what is not an outcome: a bug, or a failing token source.
 */

export interface CourierClientOptions {
  /** https://api.courier.com, https://api.eu.courier.com or a compatible server; a path prefix is kept. */
  readonly baseUrl: string
  /** The auth token, or a function asked before every call (so a rotated secret is picked up). */
  readonly authToken: string | (() => Promise<string>)
  /** The longest one call may take, from sending to the last byte of the answer. */
  readonly timeoutMs: number
  readonly userAgent?: string
  /** For tests and instrumentation; defaults to the global fetch. */
  readonly fetch?: typeof fetch
}

export interface SendOptions {
  /** Epoch ms the call must not outlive (the Lambda's own deadline, less a margin for bookkeeping). */
  readonly deadline: number
  /** Aborting it ends the call at once; the outcome is then transient ("request aborted"). */
  readonly signal?: AbortSignal
}

export interface SendResult {
  /** The HTTP status, or undefined when no answer arrived (timeout, reset, network, deadline). */
  readonly status: number | undefined
  /** The answer's body: parsed JSON, else its text; undefined when empty or when there was no answer. */
  readonly body: unknown
  readonly outcome: Outcome
  readonly durationMs: number
  /** The timeout or network error behind a transient outcome without a status, for the logs. */
  readonly cause?: unknown
}

export interface CourierClient {
  send(request: CourierRequest, options: SendOptions): Promise<SendResult>
}

/** Identifies the relay in Courier's logs and support tickets. */
export const USER_AGENT = `segment-courier-relay/${pkg.version} (+https://github.com/segment-courier-relay)`

const DEADLINE_REACHED = 'deadline reached before the request was sent'

/** A body that is JSON when it parses, else the text itself; empty is undefined. */
const parseBody = (text: string): unknown => {
  if (text === '') return undefined
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

export const createCourierClient = (options: CourierClientOptions): CourierClient => {
  const api = ky.create({
    // `prefix`, not `baseUrl`: a base with a path (a proxy, a sandbox under /courier) must be kept,
    // and URL resolution would drop it for our absolute paths ('/inbound/segment').
    prefix: options.baseUrl,
    // The queue retries, with backoff and a 24 h horizon; see the module comment.
    retry: 0,
    // Every answer is data for classifyStatus, never an exception.
    throwHttpErrors: false,
    // A followed 301/302 turns the POST into a GET without body, and undici drops Authorization
    // on a cross-origin hop; a redirect from Courier means a wrong base URL, surfaced as a
    // transient 3xx outcome so nothing is lost while someone fixes it.
    redirect: 'manual',
    headers: { accept: 'application/json', 'user-agent': options.userAgent ?? USER_AGENT },
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
  })

  const { authToken } = options
  const token = typeof authToken === 'string' ? async () => authToken : authToken

  const noAnswer = (reason: string, durationMs: number, cause?: unknown): SendResult => ({
    status: undefined,
    body: undefined,
    outcome: { kind: 'transient', status: undefined, reason },
    durationMs,
    ...(cause === undefined ? {} : { cause }),
  })

  /** What is left for this call: the configured timeout, cut short by the deadline. */
  const budgetMs = (deadline: number) => Math.floor(Math.min(options.timeoutMs, deadline - Date.now()))

  const send = async (request: CourierRequest, { deadline, signal }: SendOptions): Promise<SendResult> => {
    if (!Number.isFinite(deadline))
      throw new RangeError(`deadline must be epoch milliseconds, got ${deadline}`)
    // Checked before the token too: no secret lookup for a call that cannot happen.
    if (budgetMs(deadline) < 1) return noAnswer(DEADLINE_REACHED, 0)
    const authorization = `Bearer ${await token()}`
    const timeout = budgetMs(deadline)
    if (timeout < 1) return noAnswer(DEADLINE_REACHED, 0)

    // durationMs is the HTTP call alone (what Courier's latency looks like), not the token lookup.
    const started = performance.now()
    try {
      const response = api(request.path, {
        method: request.method,
        headers: { authorization },
        // `json` sets Content-Type: application/json; without a body there is neither.
        ...(request.rawBody !== undefined
          ? { body: request.rawBody, headers: { authorization, 'content-type': 'application/json' } }
          : request.body === undefined
            ? {}
            : { json: request.body }),
        // ky's `timeout` bounds getting the headers; `totalTimeout` also bounds reading the body
        // through the `.text()` shortcut below, so the whole call fits within min(timeoutMs, deadline).
        timeout,
        totalTimeout: timeout,
        ...(signal === undefined ? {} : { signal }),
      })
      const text = await response.text()
      const { status, headers } = await response
      const body = parseBody(text)
      return {
        status,
        body,
        outcome: classifyStatus(status, readCourierErrorBody(body), headers, endpointClassOf(request.path)),
        durationMs: performance.now() - started,
      }
    } catch (error) {
      const durationMs = performance.now() - started
      // The caller's own abort: whatever reason it gave, the call was cut short, not broken.
      if (signal?.aborted === true && (error === signal.reason || isAbortError(error))) {
        return noAnswer('request aborted', durationMs, error)
      }
      // Throws anything that is not a timeout or transport failure: bugs must surface.
      const { reason } = classifyError(error)
      return noAnswer(isTimeoutError(error) ? `timeout after ${timeout} ms` : reason, durationMs, error)
    }
  }

  return { send }
}

const isAbortError = (error: unknown) =>
  typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'AbortError'
