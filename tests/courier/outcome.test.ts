import { NetworkError, TimeoutError } from 'ky'
import { describe, expect, it } from 'vitest'
import { CourierError, isCourierError } from '../../lib/courier/courier-error.ts'
import {
  classifyError,
  classifyStatus,
  isTransportError,
  type Outcome,
  readCourierErrorBody,
} from '../../lib/courier/outcome.ts'
import { isRelayError } from '../../lib/errors/relay-error.ts'

const none = new Headers()
const courier = (message: string, type = 'invalid_request_error') => ({ message, type })

describe('classifyStatus: the retry table of README.md ("Retries and failures")', () => {
  it.each<[number, Outcome['kind']]>([
    // delivered: 2xx, or 409 duplicate
    [200, 'delivered'],
    [201, 'delivered'],
    [202, 'delivered'],
    [204, 'delivered'],
    [409, 'delivered'],
    // rate limited
    [429, 'rate-limited'],
    // transient: 408, 5xx except 501
    [408, 'transient'],
    [500, 'transient'],
    [502, 'transient'],
    [503, 'transient'],
    [504, 'transient'],
    [599, 'transient'],
    // credentials wrong
    [401, 'auth'],
    [403, 'auth'],
    // permanent: 400, 404, 413, 422, 501
    [400, 'permanent'],
    [404, 'permanent'],
    [413, 'permanent'],
    [422, 'permanent'],
    [501, 'permanent'],
    // deliberate: any other 4xx is permanent …
    [402, 'permanent'],
    [405, 'permanent'],
    [410, 'permanent'],
    [415, 'permanent'],
    [451, 'permanent'],
    // … except those HTTP defines as "retry the same request"
    [421, 'transient'],
    [425, 'transient'],
    // deliberate: 1xx and 3xx are not Courier answering about the event
    [100, 'transient'],
    [301, 'transient'],
    [302, 'transient'],
    [304, 'transient'],
    [307, 'transient'],
    [308, 'transient'],
  ])('HTTP %i is %s', (status, kind) => {
    // Act
    const outcome = classifyStatus(status, undefined, none, 'inbound')

    // Assess
    expect(outcome.kind).toBe(kind)
    expect(outcome.status).toBe(status)
  })

  it("uses Courier's message as the reason", () => {
    const message = 'Event Type Unsupported: page'

    const outcome = classifyStatus(501, courier(message), none, 'inbound')

    expect(outcome).toEqual({ kind: 'permanent', status: 501, reason: message })
  })

  it.each([400, 401, 403, 408, 500, 503])(
    'falls back to "HTTP <status>" without a message (%i)',
    (status) => {
      const outcome = classifyStatus(status, { type: 'api_error' }, none, 'inbound')

      expect(outcome).toMatchObject({ status, reason: `HTTP ${status}` })
    },
  )

  it('surfaces Retry-After on a 429', () => {
    const outcome = classifyStatus(
      429,
      courier('Too many', 'rate_limit_error'),
      new Headers({ 'retry-after': '30' }),
      'inbound',
    )

    expect(outcome).toEqual({ kind: 'rate-limited', status: 429, retryAfterSeconds: 30 })
  })

  it('leaves retryAfterSeconds undefined on a 429 without (valid) advice', () => {
    const outcome = classifyStatus(429, undefined, new Headers({ 'retry-after': 'whenever' }), 'inbound')

    expect(outcome).toEqual({ kind: 'rate-limited', status: 429, retryAfterSeconds: undefined })
  })

  it("carries Retry-After on a transient answer too, as Courier's SDKs wait for it on every retry", () => {
    const outcome = classifyStatus(503, undefined, new Headers({ 'retry-after': '30' }), 'inbound')

    expect(outcome).toEqual({ kind: 'transient', status: 503, reason: 'HTTP 503', retryAfterSeconds: 30 })
  })

  it('ignores Retry-After on a permanent answer', () => {
    const outcome = classifyStatus(400, undefined, new Headers({ 'retry-after': '30' }), 'inbound')

    expect(outcome).toEqual({ kind: 'permanent', status: 400, reason: 'HTTP 400' })
  })
})

describe('409 means two things', () => {
  it('on /inbound/* it is a duplicate messageId: delivered', () => {
    const outcome = classifyStatus(409, courier('Conflict'), none, 'inbound')

    expect(outcome).toEqual({ kind: 'delivered', status: 409 })
  })

  it.each(['tenants', 'lists', 'profiles'] as const)(
    'on %s it is a concurrent modification conflict: transient (retried)',
    (endpoint) => {
      const outcome = classifyStatus(409, courier('Conflict'), none, endpoint)

      expect(outcome).toEqual({
        kind: 'transient',
        status: 409,
        reason: 'Conflict (concurrent modification conflict)',
      })
    },
  )
})

describe("x-should-retry: Courier's own verdict overrides the status", () => {
  const verdict = (value: string) => new Headers({ 'x-should-retry': value })

  it.each([500, 503, 408, 429])('false on a %i: permanent (dead-lettered)', (status) => {
    const outcome = classifyStatus(status, courier('no'), verdict('false'), 'inbound')

    expect(outcome).toEqual({ kind: 'permanent', status, reason: 'no (x-should-retry: false)' })
  })

  it.each([400, 404, 422, 501])('true on a %i: transient (retried)', (status) => {
    const outcome = classifyStatus(status, courier('later'), verdict('true'), 'inbound')

    expect(outcome).toEqual({ kind: 'transient', status, reason: 'later (x-should-retry: true)' })
  })

  it('true on a 409 outside /inbound keeps it transient, false makes it permanent', () => {
    expect(classifyStatus(409, undefined, verdict('true'), 'tenants').kind).toBe('transient')
    expect(classifyStatus(409, undefined, verdict('false'), 'tenants').kind).toBe('permanent')
  })

  it.each([
    [202, 'false', 'delivered'],
    [409, 'false', 'delivered'],
    [401, 'false', 'auth'],
    [403, 'true', 'auth'],
  ] as const)('does not override %i with %s (stays %s)', (status, value, kind) => {
    expect(classifyStatus(status, undefined, verdict(value), 'inbound').kind).toBe(kind)
  })

  it('ignores values other than exactly true or false, as the SDK does', () => {
    expect(classifyStatus(500, undefined, verdict('TRUE'), 'inbound').kind).toBe('transient')
    expect(classifyStatus(400, undefined, verdict('yes'), 'inbound').kind).toBe('permanent')
  })
})

describe('readCourierErrorBody', () => {
  it.each<[string, unknown, ReturnType<typeof readCourierErrorBody>]>([
    ['message and type', { message: 'm', type: 't', extra: 1 }, { message: 'm', type: 't' }],
    ['only a message', { message: 'm' }, { message: 'm' }],
    ['a success body', { messageId: '1-abc' }, undefined],
    ['a non-string message', { message: 42 }, undefined],
    ['an empty message', { message: '' }, undefined],
    ['text', '<html>Bad gateway</html>', undefined],
    ['an array', [{ message: 'm' }], undefined],
    ['null', null, undefined],
    ['nothing', undefined, undefined],
  ])('reads %s', (_name, body, expected) => {
    expect(readCourierErrorBody(body)).toEqual(expected)
  })
})

const code = (message: string, errorCode: string) => Object.assign(new Error(message), { code: errorCode })
const fetchFailed = (cause: unknown) => new TypeError('fetch failed', { cause })
const request = new Request('https://api.courier.com/inbound/segment', { method: 'POST' })

describe('classifyError: timeouts and broken connections are transient', () => {
  it.each<[string, unknown, string]>([
    ["ky's TimeoutError", new TimeoutError(request), 'timeout'],
    ['AbortSignal.timeout', new DOMException('The operation timed out.', 'TimeoutError'), 'timeout'],
    [
      "ky's NetworkError over ECONNREFUSED",
      new NetworkError(request, {
        cause: fetchFailed(code('connect ECONNREFUSED 10.0.0.1:443', 'ECONNREFUSED')),
      }),
      'network error: connect ECONNREFUSED 10.0.0.1:443',
    ],
    ['a reset', fetchFailed(code('read ECONNRESET', 'ECONNRESET')), 'network error: read ECONNRESET'],
    ['socket hang up', code('socket hang up', 'ECONNRESET'), 'network error: ECONNRESET: socket hang up'],
    [
      'DNS',
      fetchFailed(code('getaddrinfo EAI_AGAIN api.courier.com', 'EAI_AGAIN')),
      'network error: getaddrinfo EAI_AGAIN api.courier.com',
    ],
    [
      'undici closing the socket while the body streams',
      new TypeError('terminated', {
        cause: Object.assign(code('other side closed', 'UND_ERR_SOCKET'), { name: 'SocketError' }),
      }),
      'network error: UND_ERR_SOCKET: other side closed',
    ],
    [
      'an undici headers timeout',
      fetchFailed(code('Headers Timeout Error', 'UND_ERR_HEADERS_TIMEOUT')),
      'network error: UND_ERR_HEADERS_TIMEOUT: Headers Timeout Error',
    ],
    ['a bare fetch failed', new TypeError('fetch failed'), 'network error: fetch failed'],
    ['an abort', new DOMException('This operation was aborted', 'AbortError'), 'request aborted'],
  ])('%s', (_name, error, reason) => {
    // Act
    const outcome = classifyError(error)

    // Assess
    expect(outcome).toEqual({ kind: 'transient', status: undefined, reason })
  })
})

describe('classifyError: anything else is a bug and is thrown back unchanged', () => {
  it.each<[string, unknown]>([
    ['a TypeError from our code', new TypeError("Cannot read properties of undefined (reading 'status')")],
    ['a plain Error', new Error('boom')],
    ['a RangeError', new RangeError('The `timeout` option cannot be greater than 2147483647')],
    ['a SyntaxError', new SyntaxError('Unexpected token')],
    ['a thrown string', 'oops'],
    ['undefined', undefined],
    ['an Error whose code is not a network one', code('bad', 'ERR_INVALID_ARG_TYPE')],
  ])('%s', (_name, error) => {
    // Act
    const act = () => classifyError(error)

    // Assess
    expect(act).toThrow()
    try {
      act()
    } catch (thrown) {
      expect(thrown).toBe(error)
    }
    expect(isTransportError(error)).toBe(false)
  })

  it('does not loop on a cause cycle', () => {
    const error: Error & { cause?: unknown } = new Error('a')
    error.cause = error

    expect(() => classifyError(error)).toThrow(error)
  })
})

describe('CourierError: an outcome that was not delivered, as an error', () => {
  it("carries the outcome, status and Courier's message and type", () => {
    // Prepare
    const outcome = classifyStatus(501, courier('Event Type Unsupported: page'), none, 'inbound')
    if (outcome.kind === 'delivered') throw new Error('unreachable')

    // Act
    const error = new CourierError(outcome, {
      courierMessage: 'Event Type Unsupported: page',
      courierType: 'invalid_request_error',
    })

    // Assess
    expect(error).toMatchObject({
      name: 'CourierError',
      message: 'Courier answered 501 (permanent): Event Type Unsupported: page',
      status: 501,
      courierMessage: 'Event Type Unsupported: page',
      courierType: 'invalid_request_error',
      outcome,
    })
    expect(isCourierError(error)).toBe(true)
    expect(isRelayError(error)).toBe(true)
    expect(isCourierError(new Error('x'))).toBe(false)
  })

  it('has no status and keeps the cause when no answer arrived', () => {
    const cause = new TimeoutError(request)

    const error = new CourierError(
      { kind: 'transient', status: undefined, reason: 'timeout after 150 ms' },
      { cause },
    )

    expect(error.message).toBe('no answer from Courier (transient): timeout after 150 ms')
    expect(error.status).toBeUndefined()
    expect(error.courierMessage).toBeUndefined()
    expect(error.cause).toBe(cause)
  })

  it('names the Retry-After of a rate limit', () => {
    const error = new CourierError({ kind: 'rate-limited', status: 429, retryAfterSeconds: 17 })

    expect(error.message).toBe('Courier answered 429 (rate-limited): rate limited, retry after 17 s')
    expect(error).not.toHaveProperty('cause')
  })
})
