import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  answerRoute,
  clearSandboxState,
  courierError,
  createSandboxState,
  findRoute,
  isJsonObject,
  routeNotFound,
  type SandboxAnswer,
  type SandboxState,
  snapshotSandboxState,
} from './sandbox-courier.ts'
import {
  createFaultInjector,
  FaultKnobError,
  faultsAsJson,
  HEALTHY_FAULTS,
  parseFaults,
  type SandboxFaults,
} from './sandbox-faults.ts'

/**
 * A local stand-in for Courier's API (https://www.courier.com/docs/reference/): it keeps the state
 * Courier keeps (profiles, tenants, memberships, lists and subscriptions; sandbox-courier.ts),
 * answers as Courier's reference says, and has fault knobs (sandbox-faults.ts). Tests use it, and
 * `npm start` runs it when no real Courier token is set. Control routes under /_sandbox/ are never
 * faulted, so a person can flip faults and read the state with curl while the relay runs:
 *
 * - `GET /_sandbox/received[?userId=&messageId=]`: every API request (or those about one person or
 *   event), in order, with the status it got and its time as ISO 8601 and epoch ms
 * - `GET /_sandbox/state`: profiles, tenants, memberships, lists with subscriptions, inbound events
 * - `GET|POST /_sandbox/faults`: read or change knobs (POST: a JSON object of knobs; 400 naming a bad one)
 * - `POST /_sandbox/reset`: empty the state and the log, knobs back to HEALTHY_FAULTS
 */

export type { SandboxState } from './sandbox-courier.ts'
export type { FailRule, SandboxFaults } from './sandbox-faults.ts'
export { HEALTHY_FAULTS } from './sandbox-faults.ts'

export interface ReceivedRequest {
  at: number
  method: string
  path: string
  body: unknown
  status: number
  messageId?: string
  type?: string
  authorized: boolean
  /** The body exactly as it arrived (byte-exactness is part of the contract), when there was one. */
  text?: string
}

export interface CourierSandbox {
  readonly url: string
  readonly port: number
  readonly received: ReceivedRequest[]
  readonly delivered: () => ReceivedRequest[]
  /** Courier's state as the sandbox holds it, to inspect (not to write: use the API). */
  readonly state: SandboxState
  readonly faults: SandboxFaults
  /** Applies knobs; throws a FaultKnobError naming an unknown knob or a bad value (nothing applied then). */
  readonly setFaults: (partial: Partial<SandboxFaults>) => void
  /** Empties the state and the log and sets every knob back to HEALTHY_FAULTS; requests in flight are forgotten. */
  readonly reset: () => void
  /** API requests received but not yet answered (e.g. waiting out latencyMs). */
  readonly inFlight: () => number
  readonly stop: () => Promise<void>
}

export interface SandboxOptions {
  readonly port?: number
  readonly host?: string
  readonly authToken?: string
  readonly log?: (line: string) => void
  readonly random?: () => number
  /** The clock behind the rate windows and timestamps (ms since the epoch); tests move it. */
  readonly now?: () => number
}

/**
 * "The maximum request body size for all Courier API endpoints is 6 MB. Requests that exceed this
 * limit are rejected with a 413 Payload Too Large response."
 * https://www.courier.com/docs/reference/api-overview — whether MB means 10^6 or 2^20 bytes is not
 * said; the sandbox takes the larger (2^20), so it never refuses what Courier might accept.
 */
export const MAX_BODY_BYTES = 6 * 1024 * 1024

/** "Courier keeps idempotency keys for 24 hours." https://www.courier.com/docs/reference/get-started */
const IDEMPOTENCY_MS = 24 * 60 * 60 * 1_000

class BodyTooLarge extends Error {}

const readBody = (request: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    request.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= MAX_BODY_BYTES) chunks.push(chunk)
    })
    request.on('end', () =>
      size > MAX_BODY_BYTES ? reject(new BodyTooLarge()) : resolve(Buffer.concat(chunks).toString('utf8')),
    )
    request.on('error', reject)
  })

const describe = (method: string, path: string, status: number, body: unknown): string => {
  const event = isJsonObject(body) ? body : {}
  const parts = [`courier ← ${status} ${method} ${path}`]
  if (typeof event.type === 'string') parts.push(event.type)
  if (typeof event.event === 'string') parts.push(JSON.stringify(event.event))
  const who = event.userId ?? event.anonymousId
  if (who !== undefined) parts.push(`user=${String(who)}`)
  if (typeof event.messageId === 'string') parts.push(`msg=${event.messageId}`)
  return parts.join(' ')
}

/** Who a request is about: the event's userId/anonymousId, the ids in its path, the recipients it subscribes. */
const peopleOf = (record: ReceivedRequest): string[] => {
  const body = isJsonObject(record.body) ? record.body : {}
  const people = [body.userId, body.anonymousId].filter((id) => id !== undefined && id !== null).map(String)
  const segments = record.path.split('/')
  const at = (name: string, offset: number) => {
    const index = segments.indexOf(name)
    return index === -1 ? undefined : segments[index + offset]
  }
  for (const id of [at('profiles', 1), at('users', 1), at('subscriptions', 1)]) if (id) people.push(id)
  if (Array.isArray(body.recipients)) {
    for (const one of body.recipients) {
      if (isJsonObject(one) && typeof one.recipientId === 'string') people.push(one.recipientId)
    }
  }
  return people
}

/**
 * GET /_sandbox/received: every API request in order, or only those about `?userId=` (the event's
 * user, or the person its path or recipients name) and/or carrying `?messageId=`; each with `time`,
 * `at` as an ISO 8601 time, beside the epoch milliseconds.
 */
const receivedView = (received: readonly ReceivedRequest[], query: URLSearchParams) => {
  const userId = query.get('userId')
  const messageId = query.get('messageId')
  return received
    .filter(
      (record) =>
        (messageId === null || record.messageId === messageId) &&
        (userId === null || peopleOf(record).includes(userId)),
    )
    .map((record) => ({ time: new Date(record.at).toISOString(), ...record }))
}

const respond = (response: ServerResponse, answer: SandboxAnswer) => {
  const text = answer.body === undefined ? '' : JSON.stringify(answer.body)
  response.writeHead(answer.status, {
    ...(answer.body === undefined ? {} : { 'content-type': 'application/json' }),
    ...answer.headers,
  })
  response.end(text)
}

export const startCourierSandbox = async (options: SandboxOptions = {}): Promise<CourierSandbox> => {
  const random = options.random ?? Math.random
  const now = options.now ?? Date.now
  const log = options.log ?? (() => undefined)
  const received: ReceivedRequest[] = []
  const state = createSandboxState()
  const faults: SandboxFaults = { ...HEALTHY_FAULTS, failNext: [] }
  const injector = createFaultInjector(faults, random, now)
  /** `Idempotency-Key` → the first answer, per endpoint, for POST requests. */
  const idempotent = new Map<string, { answer: SandboxAnswer; at: number }>()
  /** Bumped by reset(): a request still in flight (e.g. waiting out latencyMs) from before it changes nothing and is not logged. */
  let generation = 0
  let pending = 0
  /** Wakes requests waiting out latencyMs early when a reset makes their wait moot. */
  const waiting = new Set<() => void>()

  const setFaults = (partial: Partial<SandboxFaults>) => {
    Object.assign(faults, parseFaults(partial))
  }
  const reset = () => {
    generation++
    for (const wake of waiting) wake()
    received.length = 0
    clearSandboxState(state)
    idempotent.clear()
    injector.reset()
    Object.assign(faults, HEALTHY_FAULTS, { failNext: [] })
  }

  const control = (
    request: IncomingMessage,
    response: ServerResponse,
    path: string,
    text: string,
    query: URLSearchParams,
  ) => {
    const method = request.method ?? 'GET'
    const only = (allowed: string, answer: () => SandboxAnswer) =>
      respond(
        response,
        allowed.split('|').includes(method)
          ? answer()
          : courierError(405, `${path} takes ${allowed.replace('|', ' or ')}`, 'invalid_request_error'),
      )
    if (path === '/_sandbox/received')
      return only('GET', () => ({ status: 200, body: receivedView(received, query) }))
    if (path === '/_sandbox/state')
      return only('GET', () => ({ status: 200, body: snapshotSandboxState(state) }))
    if (path === '/_sandbox/reset')
      return only('POST', () => {
        reset()
        return { status: 200, body: { reset: true } }
      })
    if (path === '/_sandbox/faults')
      return only('GET|POST', () => {
        if (method === 'POST') {
          let input: unknown
          try {
            input = JSON.parse(text || '{}')
          } catch {
            return courierError(400, 'faults must be JSON', 'invalid_request_error')
          }
          try {
            setFaults(input as Partial<SandboxFaults>)
          } catch (cause) {
            if (cause instanceof FaultKnobError)
              return courierError(400, cause.message, 'invalid_request_error')
            throw cause
          }
        }
        return { status: 200, body: faultsAsJson(faults) }
      })
    respond(response, courierError(404, `no sandbox control at ${path}`, 'invalid_request_error'))
  }

  const api = async (
    request: IncomingMessage,
    response: ServerResponse,
    rawPath: string,
    text: string | BodyTooLarge,
  ) => {
    const method = request.method ?? 'GET'
    const born = generation
    let body: unknown
    let answer: SandboxAnswer | 'drop' | undefined
    if (text instanceof BodyTooLarge) {
      answer = courierError(413, 'Payload Too Large', 'invalid_request_error')
    } else {
      try {
        body = text === '' ? undefined : JSON.parse(text)
      } catch {
        // Courier's answer to a body that is not JSON is not published: a 400, in its error shape.
        answer = courierError(400, 'Unexpected token in JSON', 'invalid_request_error')
      }
    }
    const authorized =
      options.authToken === undefined || request.headers.authorization === `Bearer ${options.authToken}`
    const path = decodeURIComponent(rawPath)
    answer ??= authorized
      ? injector.decide(method, rawPath)
      : courierError(401, 'Unauthorized', 'authentication_error')
    if (faults.latencyMs > 0) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer)
          waiting.delete(wake)
          resolve()
        }
        const timer = setTimeout(wake, faults.latencyMs)
        waiting.add(wake)
      })
    }
    if (born !== generation) {
      // A reset happened meanwhile: this request belongs to the world before it (a test that ended).
      return respond(
        response,
        courierError(503, 'the sandbox was reset while this request waited', 'api_error'),
      )
    }
    if (answer === undefined) {
      // "If you send the same request again with the same key, Courier will give you the same answer
      // as before, even if it was an error" (POST only; keys kept 24 h; scoped to the endpoint).
      // https://www.courier.com/docs/reference/get-started
      const key = request.headers['idempotency-key']
      const idempotencyKey = method === 'POST' && typeof key === 'string' ? `${rawPath} ${key}` : undefined
      const stored = idempotencyKey === undefined ? undefined : idempotent.get(idempotencyKey)
      if (stored !== undefined && now() - stored.at < IDEMPOTENCY_MS) answer = stored.answer
      else {
        const found = findRoute(method, rawPath)
        answer =
          found === undefined
            ? routeNotFound()
            : answerRoute(
                state,
                found,
                { method, body, now: now() },
                {
                  maxRecipientsPerCall: faults.maxRecipientsPerCall ?? null,
                },
              )
        if (idempotencyKey !== undefined) idempotent.set(idempotencyKey, { answer, at: now() })
      }
    }
    const event = isJsonObject(body) ? body : {}
    const status = answer === 'drop' ? 0 : answer.status
    const record: ReceivedRequest = { at: now(), method, path, body, status, authorized }
    if (typeof text === 'string' && text !== '') record.text = text
    if (typeof event.messageId === 'string') record.messageId = event.messageId
    if (typeof event.type === 'string') record.type = event.type
    received.push(record)
    log(describe(method, path, status, body))
    if (answer === 'drop') request.socket.destroy()
    else respond(response, answer)
  }

  const server = createServer(async (request, response) => {
    try {
      const path = new URL(request.url ?? '/', 'http://sandbox').pathname
      const text = await readBody(request).catch((cause: unknown) => {
        if (cause instanceof BodyTooLarge) return cause
        throw cause
      })
      if (path.startsWith('/_sandbox/')) {
        const query = new URL(request.url ?? '/', 'http://sandbox').searchParams
        control(request, response, path, typeof text === 'string' ? text : '', query)
      } else {
        pending++
        try {
          await api(request, response, path, text)
        } finally {
          pending--
        }
      }
    } catch (cause) {
      if (!response.headersSent)
        respond(response, courierError(500, `sandbox: ${String(cause)}`, 'api_error'))
    }
  })

  const host = options.host ?? '127.0.0.1'
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${host}:${port}`,
    port,
    received,
    delivered: () => received.filter((r) => r.status >= 200 && r.status < 300),
    state,
    faults,
    setFaults,
    reset,
    inFlight: () => pending,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
