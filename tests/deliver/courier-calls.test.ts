import { ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { userKey } from '../../lib/user-key.ts'
import { type CourierReference, courierReference } from '../support/courier-reference.ts'
import { deletion, group, identify, track } from '../support/fixtures.ts'
import { type HttpStub, reply, startHttpStub } from '../support/http-stub.ts'
import { clearQueues } from '../support/queues.ts'
import {
  dlqMessages,
  enqueueEvents,
  invokeDeliver,
  queuedMessages,
  receiveRecords,
  startTestRelay,
  type TestRelay,
} from '../support/relay.ts'

/**
 * The deliver worker against a plain loopback server answering as Courier's API reference says
 * (https://www.courier.com/docs/reference/): where each event ends up for answers our sandbox
 * cannot be told to give.
 */

let courier: HttpStub
let relay: TestRelay

beforeAll(async () => {
  courier = await startHttpStub()
  relay = await startTestRelay({ COURIER_BASE_URL: courier.url, COURIER_GROUP_TENANTS: 'true' })
})
afterAll(async () => {
  await relay.stop()
  await courier.stop()
})
beforeEach(() => {
  courier.reset()
  clearQueues(relay.queues)
})

describe("x-should-retry: Courier's verdict decides where the event goes", () => {
  it('false on a 500: dead-lettered at once with the reason', async () => {
    // Prepare
    courier.handle(
      reply(500, { message: 'cannot process', type: 'api_error' }, { 'x-should-retry': 'false' }),
    )
    const event = track()
    await enqueueEvents(relay, [event])

    // Act
    const response = await invokeDeliver(relay.deliver(), await receiveRecords(relay), relay)

    // Assess
    expect(response.batchItemFailures).toEqual([])
    const [dead] = dlqMessages(relay)
    expect(dead?.body).toBe(JSON.stringify(event))
    expect(dead?.messageAttributes.status?.StringValue).toBe('500')
    expect(dead?.messageAttributes.reason?.StringValue).toBe('cannot process (x-should-retry: false)')
    expect(queuedMessages(relay)).toHaveLength(0)
  })

  it('true on a 400: kept on the queue and retried, not dead-lettered', async () => {
    courier.handle(
      reply(400, { message: 'try later', type: 'invalid_request_error' }, { 'x-should-retry': 'true' }),
    )
    await enqueueEvents(relay, [identify()])

    const records = await receiveRecords(relay)
    const response = await invokeDeliver(relay.deliver(), records, relay)

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: records[0]!.messageId }])
    expect(dlqMessages(relay)).toHaveLength(0)
    expect(queuedMessages(relay)).toHaveLength(1)
  })
})

/** Runs one deliver invocation over what is queued, as the event source would. */
const deliverOnce = async () => invokeDeliver(relay.deliver(), await receiveRecords(relay), relay)

/** Makes every retried record visible again, standing in for the wait the policy chose. */
const skipWaits = async () => {
  const state = relay.queues.server.inspectQueue(relay.queues.queueUrl.split('/').pop() as string)
  for (const entry of state?.messages.inflight ?? []) {
    await relay.queues.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: relay.queues.queueUrl,
        ReceiptHandle: entry.receiptHandle,
        VisibilityTimeout: 0,
      }),
    )
  }
}

describe('tenant mirroring merges, never replaces', () => {
  let reference: CourierReference
  beforeEach(() => {
    reference = courierReference()
    courier.handle(reference.handler)
  })

  it('keeps the brand, parent, preferences, user profile and other properties of an existing tenant', async () => {
    // Prepare: a tenant set up in Courier by someone else
    reference.state.tenants.set('acme', {
      name: 'Acme',
      brand_id: 'brand-1',
      parent_tenant_id: 'holding',
      default_preferences: { items: [{ id: 'marketing', status: 'OPTED_OUT' }] },
      properties: { plan: 'free', region: 'eu' },
      user_profile: { locale: 'fr' },
    })
    await enqueueEvents(relay, [group({ groupId: 'acme', userId: 'u-7', traits: { plan: 'pro' } })])

    // Act
    const response = await deliverOnce()

    // Assess
    expect(response.batchItemFailures).toEqual([])
    expect(reference.state.tenants.get('acme')).toEqual({
      name: 'Acme',
      brand_id: 'brand-1',
      parent_tenant_id: 'holding',
      default_preferences: { items: [{ id: 'marketing', status: 'OPTED_OUT' }] },
      properties: { plan: 'pro', region: 'eu' },
      user_profile: { locale: 'fr' },
    })
    expect(reference.state.memberships).toEqual(new Set(['u-7 acme']))
    const membership = courier.requests.find((r) => r.method === 'PUT' && r.url.startsWith('/users/'))
    expect(membership?.headers['content-type']).toBe('application/json')
    expect(JSON.parse(membership?.body ?? 'null')).toEqual({})
  })

  it('keeps both users’ traits when two group calls of one tenant are delivered side by side', async () => {
    // Prepare: two users of one group (two message groups, delivered at once); Courier answers
    // the tenant GET slowly, so interleaved read-merge-writes would both read the empty tenant
    courier.handle((request, response, raw) => {
      if (request.method === 'GET') setTimeout(() => reference.handler(request, response, raw), 150)
      else reference.handler(request, response, raw)
    })
    await enqueueEvents(relay, [
      group({ groupId: 'acme', userId: 'u-1', traits: { name: 'Acme', plan: 'pro' } }),
      group({ groupId: 'acme', userId: 'u-2', traits: { seats: 40 } }),
    ])

    // Act
    const response = await deliverOnce()

    // Assess: one merge after the other; neither trait lost
    expect(response.batchItemFailures).toEqual([])
    expect(reference.state.tenants.get('acme')).toEqual({
      name: 'Acme',
      properties: { name: 'Acme', plan: 'pro', seats: 40 },
    })
    expect(reference.state.memberships).toEqual(new Set(['u-1 acme', 'u-2 acme']))
  })

  it('creates a missing tenant named after the groupId when traits have no name', async () => {
    await enqueueEvents(relay, [group({ groupId: 'g-1', userId: 'u-1', traits: { plan: 'pro' } })])

    await deliverOnce()

    expect(reference.state.tenants.get('g-1')).toEqual({ name: 'g-1', properties: { plan: 'pro' } })
  })

  it('retries a 409 (concurrent modification) on the tenant write, reading the tenant again', async () => {
    // Prepare: the first PUT meets a conflict
    reference.state.tenants.set('acme', { name: 'Acme', brand_id: 'brand-1', properties: { a: 1 } })
    reference.failNext('PUT', '/tenants/acme', 409)
    await enqueueEvents(relay, [group({ groupId: 'acme', userId: 'u-7', traits: { plan: 'pro' } })])

    // Act: the first attempt meets the conflict, the retry succeeds
    const first = await deliverOnce()
    const afterConflict = structuredClone(reference.state.tenants.get('acme'))
    await skipWaits()
    const second = await deliverOnce()

    // Assess
    expect(first.batchItemFailures).toHaveLength(1)
    expect(afterConflict).toEqual({ name: 'Acme', brand_id: 'brand-1', properties: { a: 1 } })
    expect(second.batchItemFailures).toEqual([])
    expect(reference.state.tenants.get('acme')).toEqual({
      name: 'Acme',
      brand_id: 'brand-1',
      properties: { a: 1, plan: 'pro' },
    })
    expect(courier.requests.filter((r) => r.method === 'GET' && r.url === '/tenants/acme')).toHaveLength(2)
    expect(dlqMessages(relay)).toHaveLength(0)
  })
})

describe('a deletion removes the person', () => {
  let reference: CourierReference
  beforeEach(() => {
    reference = courierReference()
    courier.handle(reference.handler)
    reference.state.profiles.set('u-1', { email: 'ada@example.com' })
    reference.state.subscriptions.add('vip-1 u-1').add('news-2 u-1').add('vip-1 u-2')
    reference.state.memberships.add('u-1 acme').add('u-1 globex').add('u-2 acme')
  })

  it('removes the profile, every list subscription and every tenant membership', async () => {
    await enqueueEvents(relay, [deletion({ userId: 'u-1' })])

    const response = await deliverOnce()

    expect(response.batchItemFailures).toEqual([])
    expect(reference.state.profiles.has('u-1')).toBe(false)
    expect(reference.state.subscriptions).toEqual(new Set(['vip-1 u-2']))
    expect(reference.state.memberships).toEqual(new Set(['u-2 acme']))
  })

  it.each([
    ['the list subscriptions', 'DELETE', '/profiles/u-1/lists'],
    ['the tenant memberships', 'DELETE', '/users/u-1/tenants'],
    ['the profile', 'DELETE', '/profiles/u-1'],
  ])(
    'retries the record when removing %s fails once, the other steps done meanwhile',
    async (_what, method, path) => {
      // Prepare
      reference.failNext(method, path, 503)
      await enqueueEvents(relay, [deletion({ userId: 'u-1' })])

      // Act
      const first = await deliverOnce()
      const attempted = courier.requests.map((r) => `${r.method} ${decodeURI(r.url)}`)
      await skipWaits()
      const second = await deliverOnce()

      // Assess: every step was attempted at once; the record came back and finished
      expect(first.batchItemFailures).toHaveLength(1)
      expect(attempted).toEqual([
        'DELETE /profiles/u-1/lists',
        'DELETE /users/u-1/tenants',
        'DELETE /profiles/u-1',
      ])
      expect(second.batchItemFailures).toEqual([])
      expect(reference.state.profiles.has('u-1')).toBe(false)
      expect(reference.state.subscriptions).toEqual(new Set(['vip-1 u-2']))
      expect(reference.state.memberships).toEqual(new Set(['u-2 acme']))
      expect(dlqMessages(relay)).toHaveLength(0)
    },
  )

  it('counts a 404 as already removed', async () => {
    reference.failNext('DELETE', '/profiles/u-1', 404)
    await enqueueEvents(relay, [deletion({ userId: 'u-1' })])

    const response = await deliverOnce()

    expect(response.batchItemFailures).toEqual([])
    expect(dlqMessages(relay)).toHaveLength(0)
  })

  it('dead-letters a step Courier refuses for good, naming the call, once nothing else is left to retry', async () => {
    reference.failNext('DELETE', '/users/u-1/tenants', 400)
    await enqueueEvents(relay, [deletion({ userId: 'u-1' })])

    const response = await deliverOnce()

    expect(response.batchItemFailures).toEqual([])
    expect(dlqMessages(relay)[0]?.messageAttributes.reason?.StringValue).toBe(
      // The reason names the call with the person's key, never the id (lib/user-key.ts).
      `failed once (400) (DELETE /users/${userKey('u-1')}/tenants)`,
    )
    expect(reference.state.profiles.has('u-1')).toBe(false)
  })
})
