import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * A local stand-in for the Courier endpoints the relay calls (design.md, "What Courier
 * accepts"), with fault knobs to rehearse 429 storms, 5xx, slow answers, resets and outages.
 * Tests use it, and `npm start` runs it when no real Courier token is set. Control routes under
 * /_sandbox/ are never faulted, so a person can flip faults with curl while the relay runs.
 */

export interface SandboxFaults {
  /** 0..1 share of API requests answered 429. */
  rateLimitShare: number
  /** What a 429 carries: nothing, Retry-After seconds, retry-after-ms, or Retry-After as an HTTP date (seconds from now). */
  retryAfter: 'none' | { seconds: number } | { ms: number } | { date: number }
  /** 0..1 share answered 500/503 api_error. */
  serverErrorShare: number
  /** 0..1 share whose connection is destroyed without an answer. */
  dropShare: number
  /** Delay before answering every API request. */
  latencyMs: number
  /** Requests per second accepted (a 1-second window); the excess gets 429. */
  maxRps: number | undefined
  /** Courier down: every API request gets 503, or with outageMode 'refuse' its connection is destroyed. */
  outage: boolean
  outageMode: 'error' | 'refuse'
}

export interface ReceivedRequest {
  at: number
  method: string
  path: string
  body: unknown
  status: number
  messageId?: string
  type?: string
  authorized: boolean
}

export interface CourierSandbox {
  readonly url: string
  readonly port: number
  readonly received: ReceivedRequest[]
  readonly delivered: () => ReceivedRequest[]
  readonly faults: SandboxFaults
  readonly setFaults: (partial: Partial<SandboxFaults>) => void
  readonly reset: () => void
  readonly stop: () => Promise<void>
}

export interface SandboxOptions {
  readonly port?: number
  readonly host?: string
  readonly authToken?: string
  readonly log?: (line: string) => void
  readonly random?: () => number
}

export const HEALTHY_FAULTS: Readonly<SandboxFaults> = {
  rateLimitShare: 0,
  retryAfter: 'none',
  serverErrorShare: 0,
  dropShare: 0,
  latencyMs: 0,
  maxRps: undefined,
  outage: false,
  outageMode: 'error',
}

interface Answer {
  readonly status: number
  readonly body?: unknown
  readonly headers?: Record<string, string>
}

type Event = Record<string, unknown>

const error = (status: number, message: string, type: string): Answer => ({ status, body: { message, type } })
const schemaError = (property: string): Answer =>
  error(
    400,
    JSON.stringify([{ error: ` must have required property '${property}'`, path: '' }]),
    'invalid_request_error',
  )
const isObject = (value: unknown): value is Event =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** Courier's schema for POST /inbound/segment, as data: what each supported type requires. */
const INBOUND_REQUIRED: Readonly<Record<string, readonly string[]>> = {
  identify: ['traits'],
  track: ['event'],
  group: ['traits', 'groupId'],
}

const inbound = (event: unknown): Answer => {
  if (!isObject(event)) return schemaError('type')
  const required = INBOUND_REQUIRED[String(event.type)]
  if (required === undefined)
    return { status: 501, body: { message: `Event Type Unsupported: ${String(event.type)}` } }
  if (event.userId === undefined && event.anonymousId === undefined) return schemaError('userId')
  for (const property of required) if (event[property] === undefined) return schemaError(property)
  return { status: 202, body: { messageId: `1-${randomBytes(12).toString('hex')}` } }
}

/** The API routes: method, path pattern, and the answer for a parsed body and path parameters. */
const ROUTES: readonly {
  method: string
  pattern: RegExp
  answer: (body: unknown, params: string[]) => Answer
}[] = [
  { method: 'POST', pattern: /^\/inbound\/segment$/, answer: (body) => inbound(body) },
  {
    method: 'DELETE',
    pattern: /^\/profiles\/([^/]+)$/,
    answer: () => ({ status: 202, body: { status: 'SUCCESS' } }),
  },
  {
    method: 'POST',
    pattern: /^\/profiles\/([^/]+)$/,
    answer: (body) =>
      isObject(body) && isObject(body.profile)
        ? { status: 200, body: { status: 'SUCCESS' } }
        : schemaError('profile'),
  },
  {
    method: 'PUT',
    pattern: /^\/tenants\/([^/]+)$/,
    answer: (body, [id]) =>
      isObject(body) && typeof body.name === 'string'
        ? { status: 200, body: { id, ...body } }
        : schemaError('name'),
  },
  { method: 'PUT', pattern: /^\/users\/([^/]+)\/tenants\/([^/]+)$/, answer: () => ({ status: 204 }) },
  { method: 'PUT', pattern: /^\/lists\/([^/]+)\/subscriptions\/([^/]+)$/, answer: () => ({ status: 204 }) },
  {
    method: 'DELETE',
    pattern: /^\/lists\/([^/]+)\/subscriptions\/([^/]+)$/,
    answer: () => ({ status: 204 }),
  },
]

const readBody = (request: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    request.on('error', reject)
  })

const retryAfterHeaders = (retryAfter: SandboxFaults['retryAfter']): Record<string, string> => {
  if (retryAfter === 'none') return {}
  if ('seconds' in retryAfter) return { 'retry-after': String(retryAfter.seconds) }
  if ('ms' in retryAfter) return { 'retry-after-ms': String(retryAfter.ms) }
  return { 'retry-after': new Date(Date.now() + retryAfter.date * 1_000).toUTCString() }
}

const describe = (method: string, path: string, status: number, body: unknown): string => {
  const event = isObject(body) ? body : {}
  const parts = [`courier ← ${status} ${method} ${path}`]
  if (typeof event.type === 'string') parts.push(event.type)
  if (typeof event.event === 'string') parts.push(JSON.stringify(event.event))
  const who = event.userId ?? event.anonymousId
  if (who !== undefined) parts.push(`user=${String(who)}`)
  if (typeof event.messageId === 'string') parts.push(`msg=${event.messageId}`)
  return parts.join(' ')
}

export const startCourierSandbox = async (options: SandboxOptions = {}): Promise<CourierSandbox> => {
  const random = options.random ?? Math.random
  const log = options.log ?? (() => undefined)
  const received: ReceivedRequest[] = []
  const answered = new Map<string, Answer>()
  const faults: SandboxFaults = { ...HEALTHY_FAULTS }
  let window = { second: 0, count: 0 }

  const respond = (response: ServerResponse, answer: Answer) => {
    const text = answer.body === undefined ? '' : JSON.stringify(answer.body)
    response.writeHead(answer.status, {
      ...(answer.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...answer.headers,
    })
    response.end(text)
  }

  const overLimit = () => {
    if (faults.maxRps === undefined) return false
    const second = Math.floor(Date.now() / 1_000)
    if (second !== window.second) window = { second, count: 0 }
    window.count++
    return window.count > faults.maxRps
  }

  /** The fault this request meets, if any: undefined lets it through to the real route. */
  const fault = (): Answer | 'drop' | undefined => {
    if (faults.outage) {
      return faults.outageMode === 'refuse' ? 'drop' : error(503, 'Service Unavailable', 'api_error')
    }
    if (random() < faults.dropShare) return 'drop'
    if (overLimit() || random() < faults.rateLimitShare) {
      return {
        ...error(429, 'Too Many Requests', 'rate_limit_error'),
        headers: retryAfterHeaders(faults.retryAfter),
      }
    }
    if (random() < faults.serverErrorShare) {
      return random() < 0.5
        ? error(500, 'Internal Server Error', 'api_error')
        : error(503, 'Service Unavailable', 'api_error')
    }
    return undefined
  }

  const control = async (request: IncomingMessage, response: ServerResponse, path: string, text: string) => {
    if (path === '/_sandbox/received') return respond(response, { status: 200, body: received })
    if (path === '/_sandbox/reset' && request.method === 'POST') {
      reset()
      return respond(response, { status: 200, body: { reset: true } })
    }
    if (path === '/_sandbox/faults') {
      if (request.method === 'POST') {
        try {
          setFaults(JSON.parse(text || '{}') as Partial<SandboxFaults>)
        } catch {
          return respond(response, error(400, 'faults must be JSON', 'invalid_request_error'))
        }
      }
      return respond(response, { status: 200, body: faults })
    }
    respond(response, error(404, 'Not Found', 'invalid_request_error'))
  }

  const api = async (request: IncomingMessage, response: ServerResponse, path: string, text: string) => {
    const method = request.method ?? 'GET'
    let body: unknown
    let answer: Answer | 'drop' | undefined
    try {
      body = text === '' ? undefined : JSON.parse(text)
    } catch {
      answer = error(400, 'Unexpected token in JSON', 'invalid_request_error')
    }
    const authorized =
      options.authToken === undefined || request.headers.authorization === `Bearer ${options.authToken}`
    const event = isObject(body) ? body : {}
    const messageId = typeof event.messageId === 'string' ? event.messageId : undefined
    const route = ROUTES.find((r) => r.method === method && r.pattern.test(path))
    answer ??= authorized ? fault() : error(401, 'Unauthorized', 'authentication_error')
    if (faults.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, faults.latencyMs))
    const dedupeKey =
      route?.pattern.source.includes('inbound') && messageId !== undefined ? messageId : undefined
    if (answer === undefined) {
      const stored = dedupeKey === undefined ? undefined : answered.get(dedupeKey)
      if (stored !== undefined) answer = stored
      else if (route === undefined) answer = error(404, 'Not Found', 'invalid_request_error')
      else {
        const params = (path.match(route.pattern) ?? []).slice(1).map(decodeURIComponent)
        answer = route.answer(body, params)
        if (dedupeKey !== undefined) answered.set(dedupeKey, answer)
      }
    }
    const status = answer === 'drop' ? 0 : answer.status
    const record: ReceivedRequest = {
      at: Date.now(),
      method,
      path: decodeURIComponent(path),
      body,
      status,
      authorized,
    }
    if (messageId !== undefined) record.messageId = messageId
    if (typeof event.type === 'string') record.type = event.type
    received.push(record)
    log(describe(method, record.path, status, body))
    if (answer === 'drop') request.socket.destroy()
    else respond(response, answer)
  }

  const server = createServer(async (request, response) => {
    try {
      const path = new URL(request.url ?? '/', 'http://sandbox').pathname
      const text = await readBody(request)
      if (path.startsWith('/_sandbox/')) await control(request, response, path, text)
      else await api(request, response, path, text)
    } catch (cause) {
      if (!response.headersSent) respond(response, error(500, `sandbox: ${String(cause)}`, 'api_error'))
    }
  })

  const setFaults = (partial: Partial<SandboxFaults>) => {
    Object.assign(faults, partial)
  }
  const reset = () => {
    received.length = 0
    answered.clear()
    Object.assign(faults, HEALTHY_FAULTS)
  }

  const host = options.host ?? '127.0.0.1'
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${host}:${port}`,
    port,
    received,
    delivered: () => received.filter((r) => r.status >= 200 && r.status < 300),
    faults,
    setFaults,
    reset,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
