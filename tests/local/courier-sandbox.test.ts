import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type CourierSandbox, MAX_BODY_BYTES, startCourierSandbox } from '../../lib/local/courier-sandbox.ts'
import { group, identify, page, track } from '../support/fixtures.ts'

/**
 * The Courier sandbox over real HTTP on loopback: each behaviour and each refusal Courier's
 * reference documents (sources are cited in lib/local/sandbox-courier.ts), the list-write limit,
 * the fault knobs and their validation.
 */

const TOKEN = 'sandbox-test-token'
let sandbox: CourierSandbox
let clock = Date.parse('2026-11-29T12:00:00Z')

beforeAll(async () => {
  sandbox = await startCourierSandbox({ authToken: TOKEN, now: () => clock })
})
afterAll(() => sandbox.stop())
beforeEach(() => sandbox.reset())

interface Reply {
  status: number
  headers: Headers
  text: string
  json: unknown
}

const call = async (
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> => {
  const response = await fetch(`${sandbox.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  })
  const text = await response.text()
  let json: unknown
  try {
    json = text === '' ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: response.status, headers: response.headers, text, json }
}

const courierErrorBody = { message: expect.any(String), type: expect.any(String) }
const control = (method: string, path: string, body?: unknown) => call(method, `/_sandbox/${path}`, body)

describe('POST /inbound/segment', () => {
  it('answers identify 202 {messageId} and merges the traits into the profile of userId, else anonymousId', async () => {
    const first = await call(
      'POST',
      '/inbound/segment',
      identify({ traits: { email: 'ada@example.com', plan: 'free' } }),
    )
    await call('POST', '/inbound/segment', identify({ traits: { plan: 'pro' } }))
    await call(
      'POST',
      '/inbound/segment',
      identify({ userId: undefined, anonymousId: 'anon-9', traits: { email: 'x@example.com' } }),
    )

    const profile = await call('GET', '/profiles/user-1')
    const anonymous = await call('GET', '/profiles/anon-9')

    expect(first.status).toBe(202)
    expect(first.json).toEqual({ messageId: expect.stringMatching(/^1-[0-9a-f]{24}$/) })
    expect(profile).toMatchObject({
      status: 200,
      json: { profile: { email: 'ada@example.com', plan: 'pro' } },
    })
    expect(anonymous.json).toEqual({ profile: { email: 'x@example.com' } })
  })

  it('answers a messageId it already accepted with 409 and leaves the profile as the first event made it', async () => {
    const event = identify({ traits: { plan: 'free' } })
    await call('POST', '/inbound/segment', event)

    const repeat = await call('POST', '/inbound/segment', { ...event, traits: { plan: 'pro' } })

    expect(repeat).toMatchObject({ status: 409, json: courierErrorBody })
    expect((await call('GET', '/profiles/user-1')).json).toEqual({ profile: { plan: 'free' } })
  })

  it('turns track into the inbound event Segment-TrackEvent:<event> and accepts group', async () => {
    const tracked = await call(
      'POST',
      '/inbound/segment',
      track({ event: 'Order Completed', messageId: 'm-track' }),
    )
    const grouped = await call('POST', '/inbound/segment', group())

    const state = (await control('GET', 'state')).json as { inboundEvents: unknown[]; tenants: object }
    expect([tracked.status, grouped.status]).toEqual([202, 202])
    expect(state.inboundEvents).toEqual([
      expect.objectContaining({
        event: 'Segment-TrackEvent:Order Completed',
        messageId: 'm-track',
        userId: 'user-1',
      }),
    ])
    expect(state.tenants).toEqual({})
  })

  it.each([
    ['identify without traits', identify({ traits: undefined }), 400],
    ['identify with traits that are not an object', identify({ traits: 'ada' }), 400],
    ['track without event', track({ event: undefined }), 400],
    ['group without groupId', group({ groupId: undefined }), 400],
    ['group without traits', group({ traits: undefined }), 400],
    [
      'an event with neither userId nor anonymousId',
      track({ userId: undefined, anonymousId: undefined }),
      400,
    ],
    ['page', page(), 501],
  ])(
    'refuses %s with %i {message, type}, and the refusal does not take the messageId',
    async (_, event, status) => {
      const refused = await call('POST', '/inbound/segment', event)

      expect(refused).toMatchObject({ status, json: courierErrorBody })
      expect(sandbox.state.inboundMessageIds.has(event.messageId)).toBe(false)
    },
  )

  it('refuses a body that is not JSON with 400, and one over 6 MB with 413', async () => {
    const notJson = await call('POST', '/inbound/segment', '{"type":')
    const tooBig = await call(
      'POST',
      '/inbound/segment',
      identify({ traits: { blob: 'x'.repeat(MAX_BODY_BYTES) } }),
    )

    expect(notJson).toMatchObject({ status: 400, json: courierErrorBody })
    expect(tooBig).toMatchObject({ status: 413, json: courierErrorBody })
  })

  it('answers 401 {message, type} without the right token, changing nothing', async () => {
    const refused = await call('POST', '/inbound/segment', identify(), { authorization: 'Bearer wrong' })

    expect(refused).toMatchObject({
      status: 401,
      json: { message: 'Unauthorized', type: 'authentication_error' },
    })
    expect(sandbox.state.profiles.size).toBe(0)
  })
})

describe('profiles', () => {
  it('DELETE /profiles/{id} answers 204 with no body and leaves list subscriptions and memberships', async () => {
    await call('POST', '/inbound/segment', identify())
    await call('PUT', '/lists/beta/subscriptions/user-1')
    await call('PUT', '/users/user-1/tenants/acme')

    const deleted = await call('DELETE', '/profiles/user-1')

    expect(deleted).toMatchObject({ status: 204, text: '' })
    expect(deleted.headers.get('content-type')).toBeNull()
    expect((await call('GET', '/profiles/user-1')).status).toBe(404)
    expect((await call('GET', '/profiles/user-1/lists')).json).toMatchObject({ results: [{ id: 'beta' }] })
    expect((await call('GET', '/users/user-1/tenants')).json).toMatchObject({
      items: [{ tenant_id: 'acme' }],
    })
  })

  it('DELETE /profiles/{id}/lists removes every subscription of that user only', async () => {
    await call('POST', '/lists/a/subscriptions', {
      recipients: [{ recipientId: 'user-1' }, { recipientId: 'user-2' }],
    })
    await call('PUT', '/lists/b/subscriptions/user-1')

    const removed = await call('DELETE', '/profiles/user-1/lists')

    expect(removed).toMatchObject({ status: 200, json: { status: 'SUCCESS' } })
    expect((await call('GET', '/profiles/user-1/lists')).json).toMatchObject({ results: [] })
    expect((await call('GET', '/lists/a/subscriptions')).json).toMatchObject({
      items: [{ recipientId: 'user-2' }],
    })
  })

  it('GET /profiles/{id} of an unknown user is 404 {message, type}', async () => {
    expect(await call('GET', '/profiles/nobody')).toMatchObject({ status: 404, json: courierErrorBody })
  })
})

describe('tenants', () => {
  const full = {
    name: 'Acme Inc',
    brand_id: 'brand-1',
    parent_tenant_id: 'holding',
    default_preferences: { items: [{ id: 'topic-1', status: 'OPTED_IN' }] },
    properties: { plan: 'enterprise', seats: 40 },
    user_profile: { locale: 'en-GB' },
  }

  it('PUT /tenants/{id} creates the tenant and answers 200 with it; GET returns it', async () => {
    const put = await call('PUT', '/tenants/acme', full)

    expect(put).toMatchObject({ status: 200, json: { id: 'acme', ...full } })
    expect((await call('GET', '/tenants/acme')).json).toEqual({ id: 'acme', ...full })
  })

  it('PUT /tenants/{id} replaces the whole tenant, as Courier does: a field not sent again is gone', async () => {
    await call('PUT', '/tenants/acme', full)

    await call('PUT', '/tenants/acme', { name: 'acme', properties: { plan: 'pro' } })

    expect((await call('GET', '/tenants/acme')).json).toEqual({
      id: 'acme',
      name: 'acme',
      properties: { plan: 'pro' },
    })
  })

  it.each([
    ['no name', { properties: {} }],
    ['a name that is not a string', { name: 7 }],
    ['properties that are not an object', { name: 'Acme', properties: 'pro' }],
    ['no body', undefined],
  ])('refuses PUT /tenants/{id} with %s: 400, nothing stored', async (_, body) => {
    expect(await call('PUT', '/tenants/acme', body)).toMatchObject({ status: 400, json: courierErrorBody })
    expect(sandbox.state.tenants.size).toBe(0)
  })

  it('GET /tenants/{id} of a missing tenant is 404 {message, type}', async () => {
    expect(await call('GET', '/tenants/missing')).toMatchObject({ status: 404, json: courierErrorBody })
  })
})

describe('tenant memberships', () => {
  it('PUT /users/{u}/tenants/{t} with the spec body {profile} answers 204 and the membership shows', async () => {
    const put = await call('PUT', '/users/user-1/tenants/acme', { profile: { title: 'CTO' } })
    const bare = await call('PUT', '/users/user-1/tenants/globex')

    const memberships = await call('GET', '/users/user-1/tenants')
    const members = await call('GET', '/tenants/acme/users')
    expect([put.status, bare.status]).toEqual([204, 204])
    expect(memberships.json).toEqual({
      items: [
        { tenant_id: 'acme', user_id: 'user-1', type: 'user', profile: { title: 'CTO' } },
        { tenant_id: 'globex', user_id: 'user-1', type: 'user' },
      ],
      has_more: false,
      type: 'list',
      url: '/users/user-1/tenants',
    })
    expect(members.json).toMatchObject({ items: [{ user_id: 'user-1' }] })
  })

  it('refuses a membership whose profile is not an object: 400', async () => {
    expect(await call('PUT', '/users/user-1/tenants/acme', { profile: 'CTO' })).toMatchObject({
      status: 400,
      json: courierErrorBody,
    })
    expect(sandbox.state.memberships.get('user-1')?.size ?? 0).toBe(0)
  })

  it('DELETE /users/{u}/tenants/{t} removes one membership, DELETE /users/{u}/tenants all of them: 204', async () => {
    for (const tenant of ['a', 'b', 'c']) await call('PUT', `/users/user-1/tenants/${tenant}`, {})
    await call('PUT', '/users/user-2/tenants/a', {})

    const one = await call('DELETE', '/users/user-1/tenants/a')
    const afterOne = (await call('GET', '/users/user-1/tenants')).json
    const all = await call('DELETE', '/users/user-1/tenants')

    expect([one.status, all.status]).toEqual([204, 204])
    expect(afterOne).toMatchObject({ items: [{ tenant_id: 'b' }, { tenant_id: 'c' }] })
    expect((await call('GET', '/users/user-1/tenants')).json).toMatchObject({ items: [] })
    expect((await call('GET', '/users/user-2/tenants')).json).toMatchObject({ items: [{ tenant_id: 'a' }] })
  })
})

describe('lists and subscriptions', () => {
  it('POST /lists/{id}/subscriptions adds many recipients, creating the list, keeping existing subscriptions: 204', async () => {
    await call('PUT', '/lists/vip/subscriptions/user-0')

    const added = await call('POST', '/lists/vip/subscriptions', {
      recipients: [{ recipientId: 'user-1' }, { recipientId: 'user-2' }],
    })

    expect(added).toMatchObject({ status: 204, text: '' })
    expect((await call('GET', '/lists/vip')).json).toMatchObject({ id: 'vip', name: 'vip' })
    expect((await call('GET', '/lists/vip/subscriptions')).json).toEqual({
      items: ['user-0', 'user-1', 'user-2'].map((recipientId) => ({
        recipientId,
        created: expect.any(String),
      })),
      paging: { more: false },
    })
  })

  it('PUT /lists/{id}/subscriptions overwrites the subscriptions; PUT /lists/{id} renames and keeps them', async () => {
    await call('POST', '/lists/vip/subscriptions', { recipients: [{ recipientId: 'user-1' }] })

    await call('PUT', '/lists/vip/subscriptions', { recipients: [{ recipientId: 'user-2' }] })
    await call('PUT', '/lists/vip', { name: 'VIPs' })

    expect((await call('GET', '/lists/vip')).json).toMatchObject({ name: 'VIPs' })
    expect((await call('GET', '/lists/vip/subscriptions')).json).toMatchObject({
      items: [{ recipientId: 'user-2' }],
    })
  })

  it('PUT and DELETE /lists/{id}/subscriptions/{userId} subscribe and unsubscribe one user: 204', async () => {
    const subscribed = await call('PUT', '/lists/seg-aud-1/subscriptions/user%2F1')
    const listed = (await call('GET', '/lists/seg-aud-1/subscriptions')).json
    const unsubscribed = await call('DELETE', '/lists/seg-aud-1/subscriptions/user%2F1')
    const again = await call('DELETE', '/lists/seg-aud-1/subscriptions/user%2F1')

    expect([subscribed.status, unsubscribed.status, again.status]).toEqual([204, 204, 204])
    expect(listed).toMatchObject({ items: [{ recipientId: 'user/1' }] })
    expect((await call('GET', '/lists/seg-aud-1/subscriptions')).json).toMatchObject({ items: [] })
  })

  it.each([
    ['no recipients', {}],
    ['recipients that are not an array', { recipients: 'user-1' }],
    ['a recipient without recipientId', { recipients: [{ recipientId: 'user-1' }, { id: 'user-2' }] }],
  ])('refuses POST /lists/{id}/subscriptions with %s: 400, nothing subscribed', async (_, body) => {
    expect(await call('POST', '/lists/vip/subscriptions', body)).toMatchObject({
      status: 400,
      json: courierErrorBody,
    })
    expect(sandbox.state.lists.size).toBe(0)
  })

  it('takes thousands of recipients in one call (Courier publishes no maximum) unless maxRecipientsPerCall is set', async () => {
    const recipients = Array.from({ length: 5_000 }, (_, i) => ({ recipientId: `user-${i}` }))

    const unbounded = await call('POST', '/lists/big/subscriptions', { recipients })
    sandbox.setFaults({ maxRecipientsPerCall: 1_000 })
    const bounded = await call('POST', '/lists/bigger/subscriptions', { recipients })

    expect(unbounded.status).toBe(204)
    expect(sandbox.state.lists.get('big')?.subscriptions.size).toBe(5_000)
    expect(bounded).toMatchObject({ status: 400, json: courierErrorBody })
    expect(sandbox.state.lists.has('bigger')).toBe(false)
  })

  it('GET /lists/{id} and its subscriptions are 404 for a list that does not exist', async () => {
    expect((await call('GET', '/lists/none')).status).toBe(404)
    expect((await call('GET', '/lists/none/subscriptions')).status).toBe(404)
  })
})

describe("Courier's list-write limit (20 requests a minute), on by default", () => {
  it('answers the 21st list write within a minute 429 rate_limit_error without Retry-After; reads, deletes and other endpoints pass', async () => {
    const writes: number[] = []
    for (let i = 0; i < 20; i++) {
      const write =
        i % 2 === 0
          ? await call('PUT', `/lists/l/subscriptions/user-${i}`)
          : await call('POST', '/lists/l/subscriptions', { recipients: [{ recipientId: `user-${i}` }] })
      writes.push(write.status)
    }

    const over = await call('PUT', '/lists/other', { name: 'Other' })
    const read = await call('GET', '/lists/l/subscriptions')
    const unsubscribe = await call('DELETE', '/lists/l/subscriptions/user-0')
    const tenant = await call('PUT', '/tenants/acme', { name: 'Acme' })

    expect(writes).toEqual(Array(20).fill(204))
    expect(over).toMatchObject({
      status: 429,
      json: { message: expect.any(String), type: 'rate_limit_error' },
    })
    expect(over.headers.get('retry-after')).toBeNull()
    expect(sandbox.state.lists.has('other')).toBe(false)
    expect([read.status, unsubscribe.status, tenant.status]).toEqual([200, 204, 200])
  })

  it('lets list writes through again once the oldest leaves the 60-second window', async () => {
    const start = clock
    try {
      for (let i = 0; i < 20; i++) {
        clock = start + i * 1_000
        await call('PUT', `/lists/l/subscriptions/user-${i}`)
      }
      clock = start + 59_999
      const stillFull = await call('PUT', '/lists/l/subscriptions/late')
      clock = start + 60_000
      const freed = await call('PUT', '/lists/l/subscriptions/late')
      const fullAgain = await call('PUT', '/lists/l/subscriptions/later')

      expect([stillFull.status, freed.status, fullAgain.status]).toEqual([429, 204, 429])
    } finally {
      clock = start
    }
  })

  it('can be switched off (listWritesPerMinute: null) or lowered, and Retry-After follows the retryAfter knob', async () => {
    await control('POST', 'faults', { listWritesPerMinute: null })
    const unlimited: number[] = []
    for (let i = 0; i < 25; i++) unlimited.push((await call('PUT', `/lists/l/subscriptions/u-${i}`)).status)
    sandbox.reset()
    await control('POST', 'faults', { listWritesPerMinute: 1, retryAfter: { seconds: 3 } })

    await call('PUT', '/lists/l/subscriptions/u-1')
    const limited = await call('PUT', '/lists/l/subscriptions/u-2')

    expect(unlimited).toEqual(Array(25).fill(204))
    expect(limited.status).toBe(429)
    expect(limited.headers.get('retry-after')).toBe('3')
  })
})

describe('fault knobs', () => {
  it('conflictShare answers writes outside /inbound/ 409 {message, type}; inbound and reads are untouched', async () => {
    await control('POST', 'faults', { conflictShare: 1 })

    const tenant = await call('PUT', '/tenants/acme', { name: 'Acme' })
    const membership = await call('DELETE', '/users/user-1/tenants')
    const inbound = await call('POST', '/inbound/segment', identify())
    const read = await call('GET', '/profiles/user-1')

    expect(tenant).toMatchObject({ status: 409, json: courierErrorBody })
    expect(membership.status).toBe(409)
    expect(sandbox.state.tenants.size).toBe(0)
    expect([inbound.status, read.status]).toEqual([202, 200])
  })

  it('failNext fails one specific path once, with the status and headers asked for, then lets it through', async () => {
    await control('POST', 'faults', {
      failNext: [
        {
          method: 'delete',
          path: '/users/user 1/tenants',
          status: 500,
          headers: { 'x-should-retry': 'false' },
        },
      ],
    })

    const otherPath = await call('DELETE', '/profiles/user%201')
    const failed = await call('DELETE', '/users/user%201/tenants')
    const retried = await call('DELETE', '/users/user%201/tenants')

    expect(otherPath.status).toBe(204)
    expect(failed).toMatchObject({ status: 500, json: courierErrorBody })
    expect(failed.headers.get('x-should-retry')).toBe('false')
    expect(retried.status).toBe(204)
    expect((await control('GET', 'faults')).json).toMatchObject({ failNext: [] })
  })

  it('failNext can drop a connection and answer a given number of times', async () => {
    await control('POST', 'faults', {
      failNext: [
        { path: '/tenants/acme', status: 'drop' },
        { path: '/tenants/acme', status: 409, times: 2 },
      ],
    })

    const dropped = await call('GET', '/tenants/acme').catch((error: unknown) => error)
    const statuses = [
      (await call('GET', '/tenants/acme')).status,
      (await call('GET', '/tenants/acme')).status,
    ]
    const through = await call('GET', '/tenants/acme')

    expect(dropped).toBeInstanceOf(TypeError)
    expect(statuses).toEqual([409, 409])
    expect(through.status).toBe(404)
  })

  it('keeps the existing knobs working: 429 with Retry-After, 5xx, outage, refused connections', async () => {
    await control('POST', 'faults', { rateLimitShare: 1, retryAfter: { ms: 1500 } })
    const limited = await call('POST', '/inbound/segment', identify())
    await control('POST', 'faults', { rateLimitShare: 0, serverErrorShare: 1 })
    const failing = await call('POST', '/inbound/segment', identify())
    await control('POST', 'faults', { serverErrorShare: 0, outage: true })
    const down = await call('POST', '/inbound/segment', identify())
    await control('POST', 'faults', { outageMode: 'refuse' })
    const refused = await call('POST', '/inbound/segment', identify()).catch((error: unknown) => error)
    await control('POST', 'faults', { outage: false })
    const recovered = await call('POST', '/inbound/segment', identify())

    expect(limited).toMatchObject({ status: 429, json: { type: 'rate_limit_error' } })
    expect(limited.headers.get('retry-after-ms')).toBe('1500')
    expect([500, 503]).toContain(failing.status)
    expect(down).toMatchObject({ status: 503, json: { type: 'api_error' } })
    expect(refused).toBeInstanceOf(TypeError)
    expect(recovered.status).toBe(202)
  })

  it('refuses an unknown knob or a value of the wrong type with 400 naming it, and applies nothing', async () => {
    const typo = await control('POST', 'faults', { rateLimtShare: 1 })
    const wrongType = await control('POST', 'faults', { rateLimitShare: '1', outage: true })
    const outOfRange = await control('POST', 'faults', { dropShare: 2 })
    const badRetryAfter = await control('POST', 'faults', { retryAfter: { sec: 5 } })
    const badRule = await control('POST', 'faults', { failNext: [{ path: '/tenants/a', status: 700 }] })
    const notAnObject = await control('POST', 'faults', [1])

    expect(typo).toMatchObject({ status: 400, json: { message: expect.stringContaining('rateLimtShare') } })
    expect(wrongType).toMatchObject({
      status: 400,
      json: { message: expect.stringContaining('rateLimitShare') },
    })
    expect(outOfRange.json).toMatchObject({ message: expect.stringContaining('dropShare') })
    expect(badRetryAfter.json).toMatchObject({ message: expect.stringContaining('retryAfter') })
    expect(badRule.json).toMatchObject({ message: expect.stringContaining('failNext') })
    expect(notAnObject.status).toBe(400)
    expect(sandbox.faults).toMatchObject({
      rateLimitShare: 0,
      outage: false,
      dropShare: 0,
      retryAfter: 'none',
    })
  })

  it('setFaults refuses a bad knob in-process too', () => {
    expect(() => sandbox.setFaults({ latencyMs: -1 })).toThrow(/latencyMs/)
    expect(() => sandbox.setFaults({ methodLatencyMs: { GET: -1 } })).toThrow(/methodLatencyMs/)
    expect(() => sandbox.setFaults({ nope: 1 } as never)).toThrow(/unknown knob "nope"/)
  })

  it('GET /_sandbox/faults shows every knob, the limits as null when off', async () => {
    await control('POST', 'faults', { maxRps: 5 })

    const faults = await control('GET', 'faults')

    expect(faults.json).toEqual({
      rateLimitShare: 0,
      retryAfter: 'none',
      serverErrorShare: 0,
      conflictShare: 0,
      dropShare: 0,
      latencyMs: 0,
      methodLatencyMs: {},
      maxRps: 5,
      listWritesPerMinute: 20,
      maxRecipientsPerCall: null,
      outage: false,
      outageMode: 'error',
      failNext: [],
    })
  })
})

describe('idempotency and the control routes', () => {
  it('replays the first answer to a POST with the same Idempotency-Key', async () => {
    const event = identify()
    const first = await call('POST', '/inbound/segment', event, { 'idempotency-key': 'k-1' })

    const replay = await call('POST', '/inbound/segment', event, { 'idempotency-key': 'k-1' })
    const withoutKey = await call('POST', '/inbound/segment', event)

    expect(first.status).toBe(202)
    expect(replay).toEqual(expect.objectContaining({ status: 202, json: first.json }))
    expect(withoutKey.status).toBe(409)
  })

  it('GET /_sandbox/received lists every API request with its status; reset empties state, log and knobs', async () => {
    await call('POST', '/inbound/segment', identify({ messageId: 'm-1' }))
    await call('PUT', '/tenants/acme', { name: 'Acme' })
    await control('POST', 'faults', { conflictShare: 1 })

    const received = await control('GET', 'received')
    const reset = await control('POST', 'reset')

    expect(received.json).toEqual([
      expect.objectContaining({
        method: 'POST',
        path: '/inbound/segment',
        status: 202,
        messageId: 'm-1',
        type: 'identify',
      }),
      expect.objectContaining({ method: 'PUT', path: '/tenants/acme', status: 200, body: { name: 'Acme' } }),
    ])
    expect(reset).toMatchObject({ status: 200, json: { reset: true } })
    expect(sandbox.received).toEqual([])
    expect((await control('GET', 'state')).json).toEqual({
      profiles: {},
      tenants: {},
      memberships: {},
      lists: {},
      inboundEvents: [],
    })
    expect(sandbox.faults.conflictShare).toBe(0)
  })

  it('GET /_sandbox/state shows profiles, tenants, memberships, lists with subscriptions and inbound events', async () => {
    await call('POST', '/inbound/segment', identify({ traits: { email: 'ada@example.com' } }))
    await call('POST', '/inbound/segment', track({ messageId: 'm-2', event: 'Audience Entered' }))
    await call('PUT', '/tenants/acme', { name: 'Acme', properties: { plan: 'pro' } })
    await call('PUT', '/users/user-1/tenants/acme', { profile: { title: 'CTO' } })
    await call('PUT', '/lists/aud-1/subscriptions/user-1')

    const state = await control('GET', 'state')

    expect(state.json).toEqual({
      profiles: { 'user-1': { email: 'ada@example.com' } },
      tenants: { acme: { id: 'acme', name: 'Acme', properties: { plan: 'pro' } } },
      memberships: {
        'user-1': [{ tenant_id: 'acme', user_id: 'user-1', type: 'user', profile: { title: 'CTO' } }],
      },
      lists: {
        'aud-1': {
          id: 'aud-1',
          name: 'aud-1',
          created: expect.any(String),
          updated: expect.any(String),
          subscriptions: [{ recipientId: 'user-1', created: expect.any(String) }],
        },
      },
      inboundEvents: [
        expect.objectContaining({ event: 'Segment-TrackEvent:Audience Entered', messageId: 'm-2' }),
      ],
    })
  })

  it('methodLatencyMs holds back only the requests of its method', async () => {
    // Prepare: POSTs wait a minute, GETs do not
    await control('POST', 'faults', { methodLatencyMs: { post: 60_000 } })
    const slow = call('POST', '/inbound/segment', identify())
    while (sandbox.inFlight() === 0) await new Promise((resolve) => setTimeout(resolve, 10))

    // Act
    const fast = await call('GET', '/profiles/nobody')

    // Assess: the GET was answered while the POST still waited
    expect(fast.status).toBe(404)
    expect(sandbox.inFlight()).toBe(1)
    expect(sandbox.faults.methodLatencyMs).toEqual({ POST: 60_000 })
    sandbox.reset()
    expect((await slow).status).toBe(503)
  })

  it('forgets a request still in flight across a reset: it changes nothing and is not logged', async () => {
    await control('POST', 'faults', { latencyMs: 60_000 })
    const inFlight = call('POST', '/inbound/segment', identify())
    while (sandbox.inFlight() === 0) await new Promise((resolve) => setTimeout(resolve, 10))

    sandbox.reset()

    expect((await inFlight).status).toBe(503)
    expect(sandbox.received).toEqual([])
    expect(sandbox.state.profiles.size).toBe(0)
  })

  it('answers an unknown API route 404 {message, type}, an unknown control route 404 and a wrong method 405', async () => {
    expect(await call('GET', '/nope')).toMatchObject({ status: 404, json: courierErrorBody })
    expect((await control('GET', 'nope')).status).toBe(404)
    expect((await control('GET', 'reset')).status).toBe(405)
  })
})
