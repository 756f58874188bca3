import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type CourierClientOptions, createCourierClient, USER_AGENT } from '../../lib/courier/client.ts'
import type { CourierRequest } from '../../lib/courier/routing.ts'
import pkg from '../../package.json' with { type: 'json' }
import { identify, page } from '../support/fixtures.ts'
import { destroySocket, type HttpStub, hang, reply, startHttpStub } from '../support/http-stub.ts'

const TOKEN = 'pk_test_courier_token'
const FAR = () => Date.now() + 60_000

let stub: HttpStub

beforeAll(async () => {
  stub = await startHttpStub()
})
afterAll(async () => {
  await stub.stop()
})
beforeEach(() => stub.reset())

const clientFor = (overrides: Partial<CourierClientOptions> = {}) =>
  createCourierClient({ baseUrl: stub.url, authToken: TOKEN, timeoutMs: 2_000, ...overrides })

const inbound = (event: unknown): CourierRequest => ({
  method: 'POST',
  path: '/inbound/segment',
  body: event,
})

describe('what the Courier client sends', () => {
  it('posts the event with bearer auth, JSON content type and the relay user agent', async () => {
    // Prepare
    const event = identify({ traits: { name: 'Zoë 🦄', email: 'zoe@example.com' } })

    // Act
    const result = await clientFor().send(inbound(event), { deadline: FAR() })

    // Assess
    expect(stub.requests).toHaveLength(1)
    const [received] = stub.requests
    expect(received?.method).toBe('POST')
    expect(received?.url).toBe('/inbound/segment')
    expect(received?.headers.authorization).toBe(`Bearer ${TOKEN}`)
    expect(received?.headers['content-type']).toBe('application/json')
    expect(received?.headers['user-agent']).toBe(
      `segment-courier-relay/${pkg.version} (+https://github.com/segment-courier-relay)`,
    )
    expect(received?.headers['user-agent']).toBe(USER_AGENT)
    expect(received?.headers.accept).toBe('application/json')
    expect(received?.body).toBe(JSON.stringify(event))
    expect(JSON.parse(received?.body ?? '')).toEqual(event)
    expect(result).toMatchObject({
      status: 202,
      body: { messageId: 'stub' },
      outcome: { kind: 'delivered', status: 202 },
    })
    expect(result.durationMs).toBeGreaterThanOrEqual(0)
  })

  it('sends a raw body byte-for-byte when given one (big integers, key order, spacing)', async () => {
    // Prepare: a number JSON.parse would round, and formatting a stringify would change
    const raw = '{ "type":"track", "messageId":"m1", "properties": {"accountId": 12345678901234567890} }'

    // Act
    await clientFor().send({ ...inbound(JSON.parse(raw)), rawBody: raw }, { deadline: FAR() })

    // Assess
    expect(stub.requests[0]?.body).toBe(raw)
    expect(stub.requests[0]?.headers['content-type']).toBe('application/json')
    expect(stub.requests[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`)
  })

  it('sends a body-less DELETE without Content-Type, keeping the encoded path', async () => {
    stub.handle(reply(204))

    const result = await clientFor().send(
      { method: 'DELETE', path: '/profiles/org%2Fteam%20a' },
      { deadline: FAR() },
    )

    const [received] = stub.requests
    expect(received?.method).toBe('DELETE')
    expect(received?.url).toBe('/profiles/org%2Fteam%20a')
    expect(received?.headers).not.toHaveProperty('content-type')
    expect(received?.body).toBe('')
    expect(result).toMatchObject({
      status: 204,
      body: undefined,
      outcome: { kind: 'delivered', status: 204 },
    })
  })

  it('keeps a path prefix in the base URL', async () => {
    const client = clientFor({ baseUrl: `${stub.url}/courier/v1` })

    await client.send({ method: 'PUT', path: '/tenants/acme', body: { name: 'Acme' } }, { deadline: FAR() })

    expect(stub.requests.map((request) => `${request.method} ${request.url}`)).toEqual([
      'PUT /courier/v1/tenants/acme',
    ])
  })

  it('asks an async token source before every call', async () => {
    // Prepare
    const tokens = ['rotated-1', 'rotated-2']
    let calls = 0
    const client = clientFor({ authToken: async () => tokens[calls++] ?? 'none' })

    // Act
    await client.send(inbound(identify()), { deadline: FAR() })
    await client.send({ method: 'DELETE', path: '/profiles/u' }, { deadline: FAR() })

    // Assess
    expect(stub.requests.map((request) => request.headers.authorization)).toEqual([
      'Bearer rotated-1',
      'Bearer rotated-2',
    ])
  })

  it('uses a given user agent', async () => {
    await clientFor({ userAgent: 'custom/1.0' }).send(inbound(identify()), { deadline: FAR() })

    expect(stub.requests[0]?.headers['user-agent']).toBe('custom/1.0')
  })
})

describe('every Courier answer is an outcome, made in exactly one attempt', () => {
  it('429: rate-limited with Retry-After, not retried', async () => {
    // Prepare
    stub.handle(
      reply(429, { message: 'Rate limit exceeded', type: 'rate_limit_error' }, { 'retry-after': '17' }),
    )

    // Act
    const result = await clientFor().send(inbound(identify()), { deadline: FAR() })

    // Assess
    expect(stub.requests).toHaveLength(1)
    expect(result.status).toBe(429)
    expect(result.outcome).toEqual({ kind: 'rate-limited', status: 429, retryAfterSeconds: 17 })
    expect(result.body).toEqual({ message: 'Rate limit exceeded', type: 'rate_limit_error' })
  })

  it('429 without Retry-After: rate-limited, retryAfterSeconds undefined', async () => {
    stub.handle(reply(429, { message: 'slow down' }))

    const result = await clientFor().send(inbound(identify()), { deadline: FAR() })

    expect(stub.requests).toHaveLength(1)
    expect(result.outcome).toEqual({ kind: 'rate-limited', status: 429, retryAfterSeconds: undefined })
  })

  it.each([500, 502, 503, 504, 408])('%i: transient with the status, not retried', async (status) => {
    stub.handle(reply(status, { message: 'Internal error', type: 'api_error' }, { 'retry-after': '1' }))

    const result = await clientFor().send(inbound(identify()), { deadline: FAR() })

    expect(stub.requests).toHaveLength(1)
    // The wait is the queue's to honour (retryAfterSeconds), never a retry inside the client.
    expect(result.outcome).toEqual({
      kind: 'transient',
      status,
      reason: 'Internal error',
      retryAfterSeconds: 1,
    })
  })

  it("501: permanent with Courier's message", async () => {
    stub.handle(reply(501, { message: 'Event Type Unsupported: page' }))

    const result = await clientFor().send(inbound(page()), { deadline: FAR() })

    expect(stub.requests).toHaveLength(1)
    expect(result.outcome).toEqual({ kind: 'permanent', status: 501, reason: 'Event Type Unsupported: page' })
  })

  it("400: permanent with Courier's schema message", async () => {
    const message = '[{"error":" must have required property \'event\'","path":""}]'
    stub.handle(reply(400, { message, type: 'invalid_request_error' }))

    const result = await clientFor().send(inbound(identify()), { deadline: FAR() })

    expect(result.outcome).toEqual({ kind: 'permanent', status: 400, reason: message })
  })

  it('409: delivered (Courier already has it)', async () => {
    stub.handle(reply(409, { message: 'Conflict', type: 'invalid_request_error' }))

    const result = await clientFor().send(inbound(identify()), { deadline: FAR() })

    expect(stub.requests).toHaveLength(1)
    expect(result.outcome).toEqual({ kind: 'delivered', status: 409 })
  })

  it('409 on a tenant write: transient (a concurrent modification conflict, retried)', async () => {
    stub.handle(reply(409, { message: 'Conflict', type: 'invalid_request_error' }))

    const result = await clientFor().send(
      { method: 'PUT', path: '/tenants/acme', body: { name: 'Acme' } },
      { deadline: FAR() },
    )

    expect(stub.requests).toHaveLength(1)
    expect(result.outcome).toEqual({
      kind: 'transient',
      status: 409,
      reason: 'Conflict (concurrent modification conflict)',
    })
  })

  it('x-should-retry from Courier overrides the status: false on a 500, true on a 400', async () => {
    stub.handle(reply(500, { message: 'boom' }, { 'x-should-retry': 'false' }))
    const never = await clientFor().send(inbound(identify()), { deadline: FAR() })
    stub.handle(reply(400, { message: 'not yet' }, { 'x-should-retry': 'true' }))
    const again = await clientFor().send(inbound(identify()), { deadline: FAR() })

    expect(never.outcome).toEqual({ kind: 'permanent', status: 500, reason: 'boom (x-should-retry: false)' })
    expect(again.outcome).toEqual({
      kind: 'transient',
      status: 400,
      reason: 'not yet (x-should-retry: true)',
    })
  })

  it.each([401, 403])('%i: auth', async (status) => {
    stub.handle(reply(status, { message: 'Unauthorized', type: 'authentication_error' }))

    const result = await clientFor().send(inbound(identify()), { deadline: FAR() })

    expect(stub.requests).toHaveLength(1)
    expect(result.outcome).toEqual({ kind: 'auth', status, reason: 'Unauthorized' })
  })

  it('a redirect is not followed: transient 3xx, one attempt', async () => {
    stub.handle(reply(301, undefined, { location: '/elsewhere' }))

    const result = await clientFor().send(inbound(identify()), { deadline: FAR() })

    expect(stub.requests.map((request) => request.url)).toEqual(['/inbound/segment'])
    expect(result.outcome).toEqual({ kind: 'transient', status: 301, reason: 'HTTP 301' })
  })

  it('a non-JSON body is kept as text and classified by status', async () => {
    stub.handle((_request, response) => {
      response.writeHead(502, { 'content-type': 'text/html' })
      response.end('<html>Bad Gateway</html>')
    })

    const result = await clientFor().send(inbound(identify()), { deadline: FAR() })

    expect(result).toMatchObject({
      status: 502,
      body: '<html>Bad Gateway</html>',
      outcome: { kind: 'transient', status: 502, reason: 'HTTP 502' },
    })
  })

  it('an empty 202 is delivered with an undefined body', async () => {
    stub.handle(reply(202))

    const result = await clientFor().send(inbound(identify()), { deadline: FAR() })

    expect(result).toMatchObject({
      status: 202,
      body: undefined,
      outcome: { kind: 'delivered', status: 202 },
    })
  })
})

describe('no answer: timeouts, deadlines and broken connections are transient, without status', () => {
  it('times out after timeoutMs on a server that never answers, in one attempt', async () => {
    // Prepare
    stub.handle(hang)
    const started = Date.now()

    // Act
    const result = await clientFor({ timeoutMs: 150 }).send(inbound(identify()), { deadline: FAR() })

    // Assess
    const elapsed = Date.now() - started
    expect(result.outcome).toEqual({ kind: 'transient', status: undefined, reason: 'timeout after 150 ms' })
    expect(result.status).toBeUndefined()
    expect(elapsed).toBeGreaterThanOrEqual(140)
    expect(elapsed).toBeLessThan(1_500)
    expect(stub.requests).toHaveLength(1)
  })

  it('times out at the deadline when it comes before timeoutMs', async () => {
    stub.handle(hang)
    const started = Date.now()

    const result = await clientFor({ timeoutMs: 10_000 }).send(inbound(identify()), {
      deadline: Date.now() + 200,
    })

    const elapsed = Date.now() - started
    expect(result.outcome).toMatchObject({ kind: 'transient', status: undefined })
    const reason = result.outcome.kind === 'transient' ? result.outcome.reason : ''
    const budgetMs = Number(/^timeout after (\d+) ms$/.exec(reason)?.[1])
    expect(budgetMs).toBeGreaterThan(0)
    expect(budgetMs).toBeLessThanOrEqual(200)
    expect(elapsed).toBeLessThan(1_500)
    expect(stub.requests).toHaveLength(1)
  })

  it('bounds reading the body too: headers sent, body never finished', async () => {
    stub.handle((_request, response) => {
      response.writeHead(202, { 'content-type': 'application/json' })
      response.write('{"messageId":')
    })
    const started = Date.now()

    const result = await clientFor({ timeoutMs: 150 }).send(inbound(identify()), { deadline: FAR() })

    expect(result.outcome).toMatchObject({ kind: 'transient', status: undefined })
    expect(Date.now() - started).toBeLessThan(1_500)
  })

  it('makes no request, and asks no token, when the deadline has passed', async () => {
    // Prepare
    let tokenCalls = 0
    const client = clientFor({
      authToken: async () => {
        tokenCalls++
        return TOKEN
      },
    })

    // Act
    const results = [
      await client.send(inbound(identify()), { deadline: Date.now() - 1_000 }),
      await client.send(inbound(identify()), { deadline: Date.now() }),
    ]

    // Assess
    expect(stub.requests).toHaveLength(0)
    expect(tokenCalls).toBe(0)
    for (const result of results) {
      expect(result).toMatchObject({
        status: undefined,
        body: undefined,
        outcome: {
          kind: 'transient',
          status: undefined,
          reason: 'deadline reached before the request was sent',
        },
      })
    }
  })

  it('a connection the server destroys is transient, in one attempt', async () => {
    stub.handle(destroySocket)

    const result = await clientFor().send(inbound(identify()), { deadline: FAR() })

    expect(stub.requests).toHaveLength(1)
    expect(result.status).toBeUndefined()
    expect(result.outcome).toMatchObject({ kind: 'transient', status: undefined })
    expect(result.outcome.kind === 'transient' && result.outcome.reason).toMatch(/^network error: /)
    expect(result.cause).toBeInstanceOf(Error)
  })

  it('a refused connection is transient', async () => {
    // Prepare: a port where nothing listens any more
    const gone = await startHttpStub()
    await gone.stop()

    // Act
    const result = await clientFor({ baseUrl: gone.url }).send(
      { method: 'DELETE', path: '/profiles/u' },
      { deadline: FAR() },
    )

    // Assess
    expect(result.outcome).toMatchObject({ kind: 'transient', status: undefined })
    expect(result.outcome.kind === 'transient' && result.outcome.reason).toMatch(/ECONNREFUSED/)
  })

  it("the caller's abort ends the call with a transient outcome", async () => {
    stub.handle(hang)
    const controller = new AbortController()
    setTimeout(() => controller.abort(new Error('lambda is shutting down')), 50)

    const result = await clientFor().send(inbound(identify()), { deadline: FAR(), signal: controller.signal })

    expect(result.outcome).toEqual({ kind: 'transient', status: undefined, reason: 'request aborted' })
  })
})

describe('what is not an outcome propagates', () => {
  it('a programming error inside fetch is thrown, not classified', async () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'headers')")
    const client = clientFor({
      fetch: async () => {
        throw bug
      },
    })

    await expect(client.send(inbound(identify()), { deadline: FAR() })).rejects.toBe(bug)
  })

  it('a deadline that is not a number is a bug, thrown before any request', async () => {
    await expect(clientFor().send(inbound(identify()), { deadline: Number.NaN })).rejects.toThrow(RangeError)
    expect(stub.requests).toHaveLength(0)
  })

  it('a failing token source is thrown', async () => {
    const failure = new Error('SSM unavailable')
    const client = clientFor({
      authToken: async () => {
        throw failure
      },
    })

    await expect(client.send(inbound(identify()), { deadline: FAR() })).rejects.toBe(failure)
    expect(stub.requests).toHaveLength(0)
  })
})
