import { describe, expect, it } from 'vitest'
import { DEFAULTS, parseConfig } from '../../lib/config.ts'
import { COLD_START_RPS, createPacers, LISTS_PUBLISHED_RPS } from '../../lib/courier/pacer.ts'
import { CUBIC_DEFAULTS } from '../../lib/courier/rate-control.ts'
import { createLambdaContext } from '../../lib/local/lambda-context.ts'
import { finishMarginMs } from '../../lib/queue/settle-batch.ts'
import { alias, deletion, group, identify, page, screen, segmentRequest, track } from '../support/fixtures.ts'
import { untilStalled } from '../support/progress.ts'
import {
  dlqMessages,
  enqueueEvents,
  ingestHandlerFor,
  invokeDeliver,
  queuedMessages,
  receiveRecords,
  skipWait,
  startRelayPoller,
  startTestRelay,
  TEST_SQS_TIMEOUTS,
  type TestRelay,
  until,
  useTestRelay,
  visibilityOf,
} from '../support/relay.ts'

let relay: TestRelay
useTestRelay((started) => {
  relay = started
})

const inbound = () => relay.sandbox.delivered().filter((r) => r.path === '/inbound/segment')

describe('routing every event type to Courier', () => {
  it('sends identify, track and group to /inbound/segment with the body deep-equal to what Segment sent', async () => {
    // Prepare: unicode, deep nesting and a 30 KB event
    const nested = { a: { b: { c: { d: [1, { e: 'ünïcødé ✓ 🦄 𝄞' }] } } } }
    const events = [
      identify({ traits: { name: 'Zoë Ω', nested } }),
      track({ properties: { blob: 'x'.repeat(30_000), nested } }),
      group(),
    ]
    await enqueueEvents(relay, events)

    // Act
    const records = await receiveRecords(relay)
    const response = await invokeDeliver(relay.deliver(), records, relay)

    // Assess
    expect(response.batchItemFailures).toEqual([])
    expect(inbound().map((r) => r.body)).toEqual(expect.arrayContaining(events))
    expect(inbound()).toHaveLength(3)
    expect(JSON.stringify(events[1]).length).toBeGreaterThan(30_000)
  })

  it('turns delete into removing the subscriptions, memberships and profile, and skips page, screen and alias without calling Courier', async () => {
    await enqueueEvents(relay, [deletion({ userId: 'user/42 é' }), page(), screen(), alias()])

    const response = await invokeDeliver(relay.deliver(), await receiveRecords(relay), relay)

    expect(response.batchItemFailures).toEqual([])
    expect(relay.sandbox.received.map((r) => `${r.method} ${r.path}`)).toEqual([
      'DELETE /profiles/user/42 é/lists',
      'DELETE /users/user/42 é/tenants',
      'DELETE /profiles/user/42 é',
    ])
    expect(queuedMessages(relay)).toHaveLength(0)
    expect(dlqMessages(relay)).toHaveLength(0)
  })

  it('with COURIER_GROUP_TENANTS also upserts the tenant and the membership', async () => {
    const withTenants = await startTestRelay({ COURIER_GROUP_TENANTS: 'true' })
    try {
      await enqueueEvents(withTenants, [group({ groupId: 'acme', userId: 'u-7' })])

      const response = await invokeDeliver(
        withTenants.deliver(),
        await receiveRecords(withTenants),
        withTenants,
      )

      expect(response.batchItemFailures).toEqual([])
      const calls = withTenants.sandbox.received.map((r) => ({ call: `${r.method} ${r.path}`, body: r.body }))
      expect(calls).toEqual([
        { call: 'POST /inbound/segment', body: expect.objectContaining({ type: 'group', groupId: 'acme' }) },
        { call: 'GET /tenants/acme', body: undefined },
        {
          call: 'PUT /tenants/acme',
          body: { name: 'Acme Inc', properties: { name: 'Acme Inc', plan: 'enterprise' } },
        },
        { call: 'PUT /users/u-7/tenants/acme', body: {} },
      ])
    } finally {
      await withTenants.stop()
    }
  })
})

const DELIVERY_CONCURRENCY_DEFAULT = DEFAULTS.DELIVERY_CONCURRENCY

describe('429 from Courier', () => {
  it('holds the record and every unsent record of the batch back for Retry-After, then delivers them', async () => {
    // Prepare: one request at a time so the batch order is the send order
    relay.sandbox.setFaults({ rateLimitShare: 1, retryAfter: { seconds: 7 } })
    const events = Array.from({ length: 5 }, () => track())
    await enqueueEvents(relay, events)
    const records = await receiveRecords(relay)

    // Act
    const response = await invokeDeliver(handlerWithConcurrency(1), records, relay)

    // Assess: one request reached Courier; all five are retried and hidden for ~7 s
    expect(relay.sandbox.received).toHaveLength(1)
    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
      records.map((r) => r.messageId).sort(),
    )
    const visibility = visibilityOf(relay)
    for (const record of records) expect(visibility.get(record.messageId)).toBeGreaterThan(5.5)
    for (const record of records) expect(visibility.get(record.messageId)).toBeLessThanOrEqual(7.01)

    // Act again once Courier allows (the wait is skipped instead of slept)
    relay.sandbox.setFaults({ rateLimitShare: 0 })
    await Promise.all(records.map((record) => skipWait(relay, record)))
    const retry = await invokeDeliver(handlerWithConcurrency(1), await receiveRecords(relay), relay)

    expect(retry.batchItemFailures).toEqual([])
    expect(
      inbound()
        .map((r) => r.messageId)
        .sort(),
    ).toEqual(events.map((e) => e.messageId).sort())
  })

  it('without Retry-After holds the batch back for the interval of the cut rate, seconds, not a minute', async () => {
    // Prepare: the default RATE_LIMIT_DELAY_SECONDS (60) and a cold instance (1 request/s)
    relay.sandbox.setFaults({ rateLimitShare: 1, retryAfter: 'none' })
    const events = Array.from({ length: 4 }, () => track())
    await enqueueEvents(relay, events)
    const handler = relay.deliver({ config: configWith({ RATE_LIMIT_DELAY_SECONDS: '60' }) })
    const records = await receiveRecords(relay)

    // Act
    const response = await invokeDeliver(handler, records, relay)

    // Assess: one 429, every record of the batch back within 2 s (1 / (0.7 × 1 req/s), rounded up)
    expect(relay.sandbox.received.length).toBeLessThanOrEqual(DELIVERY_CONCURRENCY_DEFAULT)
    expect(response.batchItemFailures).toHaveLength(records.length)
    const visibility = visibilityOf(relay)
    for (const record of records) {
      expect(visibility.get(record.messageId)).toBeGreaterThan(0.5)
      expect(visibility.get(record.messageId)).toBeLessThanOrEqual(2.01)
    }
  })

  it('keeps the cut rate for the next batch of the same instance', async () => {
    // Prepare: the 429s cut the inbound rate of this one instance
    relay.sandbox.setFaults({ rateLimitShare: 1, retryAfter: 'none' })
    await enqueueEvents(relay, [track(), track()])
    const rates: number[] = []
    const pacers = createPacers({ maxRps: undefined, instances: 1 })
    const handler = relay.deliver({ pacerFor: pacers })

    // Act
    await invokeDeliver(handler, await receiveRecords(relay), relay)
    rates.push(pacers('inbound').ratePerSecond())

    // Assess: cut by β from the cold start, and the lists class untouched
    expect(rates[0]).toBeCloseTo(COLD_START_RPS * CUBIC_DEFAULTS.decrease, 5)
    expect(pacers('lists').ratePerSecond()).toBeCloseTo(LISTS_PUBLISHED_RPS, 5)
  })
})

describe('transient failures', () => {
  it('backs off further with each receive on 5xx, then delivers after recovery', async () => {
    // Prepare: random fixed at 1 makes each delay the backoff ceiling: 1, 2, 4 s
    relay.sandbox.setFaults({ serverErrorShare: 1 })
    const event = track()
    await enqueueEvents(relay, [event])
    const handler = relay.deliver({ config: configWith({ RETRY_MAX_SECONDS: '8' }), random: () => 1 })

    // Act: three failed receives
    const delays: number[] = []
    for (let attempt = 1; attempt <= 3; attempt++) {
      const records = await receiveRecords(relay)
      expect(records[0]?.attributes.ApproximateReceiveCount).toBe(String(attempt))
      await invokeDeliver(handler, records, relay)
      delays.push(Math.round(visibilityOf(relay).get(records[0]!.messageId) as number))
      await skipWait(relay, records[0]!)
    }
    relay.sandbox.setFaults({ serverErrorShare: 0 })
    const final = await invokeDeliver(handler, await receiveRecords(relay), relay)

    // Assess
    expect(delays).toEqual([1, 2, 4])
    expect(final.batchItemFailures).toEqual([])
    expect(inbound().map((r) => r.messageId)).toEqual([event.messageId])
    expect(dlqMessages(relay)).toHaveLength(0)
  })

  it('treats a Courier answer slower than COURIER_TIMEOUT_MS as transient', async () => {
    relay.sandbox.setFaults({ latencyMs: 400 })
    await enqueueEvents(relay, [track()])
    const handler = relay.deliver({ config: configWith({ COURIER_TIMEOUT_MS: '100' }) })

    const response = await invokeDeliver(handler, await receiveRecords(relay), relay)

    expect(response.batchItemFailures).toHaveLength(1)
    expect(dlqMessages(relay)).toHaveLength(0)
  })

  it('treats a dropped connection as transient', async () => {
    relay.sandbox.setFaults({ dropShare: 1 })
    await enqueueEvents(relay, [identify()])

    const response = await invokeDeliver(relay.deliver(), await receiveRecords(relay), relay)

    expect(response.batchItemFailures).toHaveLength(1)
    expect(queuedMessages(relay)).toHaveLength(1)
  })
})

describe('the invocation deadline', () => {
  it('returns every record it could not finish in time for a quick retry, sending nothing past the deadline', async () => {
    // Prepare: a slow Courier and an invocation with 0.3 s left once the finishing margin is kept
    relay.sandbox.setFaults({ latencyMs: 500 })
    await enqueueEvents(relay, [track(), track(), track()])
    const records = await receiveRecords(relay)
    const margin = finishMarginMs(TEST_SQS_TIMEOUTS)

    // Act
    const started = Date.now()
    const response = await invokeDeliver(handlerWithConcurrency(1), records, relay, margin + 300)

    // Assess
    expect(Date.now() - started).toBeLessThan(margin + 300)
    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
      records.map((r) => r.messageId).sort(),
    )
    const visibility = visibilityOf(relay)
    for (const record of records) expect(visibility.get(record.messageId)).toBeLessThanOrEqual(1.01)
    // Let a request the deadline cut short finish at the sandbox, so it is counted here (not in the next test).
    await new Promise((resolve) => setTimeout(resolve, 600))
    const ids = new Set(records.map((r) => (JSON.parse(r.body) as { messageId: string }).messageId))
    expect(relay.sandbox.received.filter((r) => ids.has(r.messageId as string)).length).toBeLessThanOrEqual(1)
  })
})

describe('permanent failures and bad credentials', () => {
  it('dead-letters a 400 at once with status and Courier’s message', async () => {
    // Prepare: identify without traits is a schema error at Courier
    const noTraits = identify({ traits: undefined })
    await enqueueEvents(relay, [noTraits])
    const handler = relay.deliver()

    // Act
    const response = await invokeDeliver(handler, await receiveRecords(relay), relay)

    // Assess
    expect(response.batchItemFailures).toEqual([])
    const [dead] = dlqMessages(relay)
    expect(dead?.body).toBe(JSON.stringify(noTraits))
    expect(dead?.messageAttributes.status?.StringValue).toBe('400')
    expect(dead?.messageAttributes.stage?.StringValue).toBe('deliver')
    expect(dead?.messageAttributes.messageId?.StringValue).toBe(noTraits.messageId)
    expect(dead?.messageAttributes.reason?.StringValue).toMatch(/traits/)
    expect(dead?.messageAttributes.courierType?.StringValue).toBe('invalid_request_error')
    expect(queuedMessages(relay)).toHaveLength(0)
  })

  it('dead-letters what Courier answers 501 to', async () => {
    // Prepare: a client answering as Courier does for an unsupported type
    await enqueueEvents(relay, [identify()])
    const records = await receiveRecords(relay)
    const handler = relay.deliver({
      courier: {
        send: async () => ({
          status: 501,
          body: { message: 'Event Type Unsupported: identify' },
          outcome: { kind: 'permanent', status: 501, reason: 'Event Type Unsupported: identify' },
          durationMs: 1,
        }),
      },
    })

    // Act
    const response = await invokeDeliver(handler, records, relay)

    // Assess
    expect(response.batchItemFailures).toEqual([])
    expect(dlqMessages(relay)[0]?.messageAttributes.status?.StringValue).toBe('501')
    expect(dlqMessages(relay)[0]?.messageAttributes.reason?.StringValue).toBe(
      'Event Type Unsupported: identify',
    )
  })

  it('dead-letters once even when Courier’s message holds characters SQS refuses in an attribute', async () => {
    // Prepare: Courier's error text quoting bytes SQS will not take (U+FFFF, a lone surrogate)
    await enqueueEvents(relay, [identify()])
    const records = await receiveRecords(relay)
    const message = 'bad value "\uFFFF\uD800" in traits'
    const handler = relay.deliver({
      courier: {
        send: async () => ({
          status: 400,
          body: { message, type: 'invalid_request_error' },
          outcome: { kind: 'permanent', status: 400, reason: message },
          durationMs: 1,
        }),
      },
    })

    // Act
    const response = await invokeDeliver(handler, records, relay)

    // Assess: landed in the DLQ through the embedded SQS, not retried forever
    expect(response.batchItemFailures).toEqual([])
    const [dead] = dlqMessages(relay)
    expect(dead?.messageAttributes.reason?.StringValue).toBe('bad value "\\uffff\\ud800" in traits')
    expect(queuedMessages(relay)).toHaveLength(0)
  })

  it('keeps an event on the queue, slowly retried, when Courier answers 401', async () => {
    const event = track()
    await enqueueEvents(relay, [event])
    const handler = relay.deliver({ config: configWith({ COURIER_AUTH_TOKEN: 'wrong-token' }) })

    const records = await receiveRecords(relay)
    const response = await invokeDeliver(handler, records, relay)

    // This event's own request: an answer to an earlier test's timed-out request may still be
    // recorded after the reset on a loaded machine.
    expect(
      relay.sandbox.received.filter((r) => r.messageId === event.messageId).map((r) => r.status),
    ).toEqual([401])
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: records[0]!.messageId }])
    expect(visibilityOf(relay).get(records[0]!.messageId)).toBeGreaterThan(20)
    expect(dlqMessages(relay)).toHaveLength(0)
  })

  it('dead-letters a queued message that is not a Segment event instead of retrying it forever', async () => {
    await enqueueEvents(relay, ['{"type":"track","messageId":"m-1"}'])

    const response = await invokeDeliver(relay.deliver(), await receiveRecords(relay), relay)

    expect(response.batchItemFailures).toEqual([])
    expect(dlqMessages(relay)[0]?.messageAttributes.reason?.StringValue).toMatch(/not a valid Segment event/)
    expect(relay.sandbox.received).toHaveLength(0)
  })
})

describe('a Courier outage', () => {
  it('loses nothing: 1,000 events ingested while Courier is down are all delivered when it returns', {
    timeout: 90_000,
  }, async () => {
    // Prepare: Courier down, the relay running as npm start runs it
    relay.sandbox.setFaults({ outage: true })
    const ingest = ingestHandlerFor(relay)
    // 100 users with 10 events each
    const events = Array.from({ length: 1_000 }, (_, i) =>
      i % 3 === 0 ? identify({ userId: `user-${i % 100}` }) : track({ userId: `user-${i % 100}` }),
    )
    const poller = startRelayPoller(relay, { maxConcurrency: 3 })
    try {
      // Act: Segment posts 100-event batches during the outage
      for (let i = 0; i < events.length; i += 100) {
        const body = JSON.stringify(events.slice(i, i + 100))
        const answer = await ingest(segmentRequest(body), createLambdaContext('ingest', 6_000))
        expect(answer.statusCode).toBe(200)
      }
      await until(() => relay.sandbox.received.length > 50, 20_000, 'delivery attempts during the outage')
      relay.sandbox.setFaults({ outage: false })
      const recovered = Date.now()
      const delivered = () => new Set(inbound().map((r) => r.messageId))
      // Bounded by progress (Courier's requests), not the clock: a busy machine only slows it.
      await untilStalled(
        () => events.every((e) => delivered().has(e.messageId)),
        () => relay.sandbox.received.length,
        { what: 'all 1,000 delivered' },
      )
      console.log(`outage test: all 1,000 delivered ${Date.now() - recovered} ms after Courier returned`)
    } finally {
      await poller.stop()
    }

    // Assess
    const deliveredIds = new Set(inbound().map((r) => r.messageId))
    expect(events.filter((e) => !deliveredIds.has(e.messageId))).toEqual([])
    expect(dlqMessages(relay)).toHaveLength(0)
    expect(relay.sandbox.received.some((r) => r.status === 503)).toBe(true)
  })
})

function configWith(env: Record<string, string>) {
  return parseConfig({ ...relay.env, ...env })
}

function handlerWithConcurrency(concurrency: number) {
  return relay.deliver({ config: configWith({ DELIVERY_CONCURRENCY: String(concurrency) }) })
}
