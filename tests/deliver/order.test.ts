import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../lib/config.ts'
import { createDeliverHandler } from '../../lib/deliver/handler.ts'
import { createLambdaContext } from '../../lib/local/lambda-context.ts'
import { createLogger } from '../../lib/telemetry.ts'
import { type EventFixture, identify, segmentRequest, track } from '../support/fixtures.ts'
import { reply, startHttpStub } from '../support/http-stub.ts'
import { reorderedUsers } from '../support/order.ts'
import {
  dlqMessages,
  enqueueEvents,
  ingestHandlerFor,
  invokeDeliver,
  receiveRecords,
  startRelayPoller,
  startTestRelay,
  type TestRelay,
  until,
  visibilityOf,
} from '../support/relay.ts'

/**
 * Issue 9: each user's events reach Courier in the order Segment sent them. The sign-up flow
 * (identify puts the email on the profile, then a bigger track triggers the welcome message)
 * through the real handlers, the embedded SQS and the Courier sandbox, with Courier failing.
 */

/** A sign-up: identify, then a track bigger than it (ingest once sent the bigger event first). */
const signUp = (user: string): [EventFixture, EventFixture] => [
  identify({ userId: user, traits: { email: `${user}@example.com` } }),
  track({ userId: user, event: 'Signed Up', properties: { plan: 'pro', note: 'x'.repeat(2_000) } }),
]

const postAll = async (relay: TestRelay, users: string[]) => {
  const ingest = ingestHandlerFor(relay)
  const post = async (events: EventFixture[]) => {
    const body = events.length === 1 ? JSON.stringify(events[0]) : JSON.stringify(events)
    const answer = await ingest(segmentRequest(body), createLambdaContext('ingest', 6_000))
    expect(answer.statusCode).toBe(200)
  }
  const sent: EventFixture[] = []
  const arrays: EventFixture[] = []
  for (const [i, user] of users.entries()) {
    const events = signUp(user)
    sent.push(...events)
    if (i % 2 === 0) {
      // Classic Webhooks: one event per request, in order
      for (const event of events) await post([event])
    } else {
      arrays.push(...events)
    }
  }
  // Webhooks (Actions) with batching: one array holding every other user's sign-up
  await post(arrays)
  return sent
}

describe('per-user order on a FIFO queue, Courier failing 20% with 5xx and 10% with 429', () => {
  it('delivers every identify before its track, for every user, sent singly and in arrays', {
    timeout: 90_000,
  }, async () => {
    // Prepare
    const relay = await startTestRelay({ RETRY_AFTER_MAX_SECONDS: '1' }, { visibilityTimeoutSeconds: 30 })
    try {
      relay.sandbox.setFaults({ serverErrorShare: 0.2, rateLimitShare: 0.1, retryAfter: { ms: 300 } })
      const users = Array.from({ length: 60 }, (_, i) => `signup-${i}`)
      const poller = startRelayPoller(relay, { maxConcurrency: 3 })
      let sent: EventFixture[] = []
      try {
        // Act
        sent = await postAll(relay, users)
        const delivered = () => new Set(relay.sandbox.delivered().map((r) => r.messageId))
        await until(() => sent.every((e) => delivered().has(e.messageId)), 60_000, 'every sign-up delivered')
      } finally {
        await poller.stop()
      }

      // Assess
      const statuses = new Set(relay.sandbox.received.map((r) => r.status))
      expect(statuses).toContain(500)
      expect(statuses).toContain(429)
      expect(reorderedUsers(sent, relay.sandbox.received)).toEqual([])
      expect(dlqMessages(relay)).toHaveLength(0)
    } finally {
      await relay.stop()
    }
  })

  it('holds a user’s track until the identify Courier refused three times is delivered, while other users go on', {
    timeout: 60_000,
  }, async () => {
    // Prepare: a Courier that answers 500 to one identify three times, 202 to everything else
    const courier = await startHttpStub()
    const relay = await startTestRelay({ COURIER_BASE_URL: courier.url }, { visibilityTimeoutSeconds: 30 })
    try {
      const [slowIdentify, slowTrack] = signUp('stubborn')
      const others = ['a', 'b', 'c'].flatMap((user) => signUp(user))
      let refusals = 0
      courier.handle((request, response, raw) => {
        if (request.body.includes(slowIdentify.messageId) && refusals < 3) {
          refusals++
          return reply(500, { message: 'try again', type: 'api_error' })(request, response, raw)
        }
        return reply(202, { messageId: 'ok' })(request, response, raw)
      })
      const poller = startRelayPoller(relay, { maxConcurrency: 2 })
      try {
        // Act
        const answer = await ingestHandlerFor(relay)(
          segmentRequest(JSON.stringify([slowIdentify, ...others, slowTrack])),
          createLambdaContext('ingest', 6_000),
        )
        expect(answer.statusCode).toBe(200)
        const ids = () => courier.requests.map((r) => (JSON.parse(r.body) as { messageId: string }).messageId)
        await until(() => ids().includes(slowTrack.messageId), 40_000, 'the held track delivered')
      } finally {
        await poller.stop()
      }

      // Assess: three refusals, then identify, then track; nobody else waited for them
      const attempts = courier.requests.map((r) => JSON.parse(r.body) as { messageId: string })
      const at = (id: string) => attempts.findIndex((a) => a.messageId === id)
      const lastAttempt = (id: string) => attempts.map((a) => a.messageId).lastIndexOf(id)
      expect(attempts.filter((a) => a.messageId === slowIdentify.messageId)).toHaveLength(4)
      expect(at(slowTrack.messageId)).toBeGreaterThan(lastAttempt(slowIdentify.messageId))
      expect(attempts.filter((a) => a.messageId === slowTrack.messageId)).toHaveLength(1)
      for (const event of others)
        expect(at(event.messageId)).toBeLessThan(lastAttempt(slowIdentify.messageId))
    } finally {
      await relay.stop()
      await courier.stop()
    }
  })
})

describe.each(['fifo', 'standard'] as const)('the in-batch rule on a %s queue', (queueType) => {
  it('sends a user’s later records back with the one that failed, and delivers the other users', async () => {
    // Prepare: user u's identify meets a 500; v's events are fine
    const courier = await startHttpStub()
    const relay = await startTestRelay({ COURIER_BASE_URL: courier.url }, { queueType })
    try {
      const [uIdentify, uTrack] = signUp('u')
      const [vIdentify, vTrack] = signUp('v')
      courier.handle((request, response, raw) =>
        reply(request.body.includes(uIdentify.messageId) ? 500 : 202, { message: 'x' })(
          request,
          response,
          raw,
        ),
      )
      await enqueueEvents(relay, [uIdentify, vIdentify, uTrack, vTrack])
      const records = await receiveRecords(relay)
      const recordOf = (event: EventFixture) =>
        records.find((r) => JSON.parse(r.body).messageId === event.messageId)?.messageId as string
      const order = records.map((r) => JSON.parse(r.body).messageId as string)
      expect(order).toHaveLength(4)
      expect(order.filter((id) => id === uIdentify.messageId || id === uTrack.messageId)).toEqual([
        uIdentify.messageId,
        uTrack.messageId,
      ])

      // Act
      const response = await invokeDeliver(relay.deliver(), records, relay)

      // Assess: u's track never reached Courier and comes back with u's identify, as late
      const sentIds = courier.requests.map((r) => (JSON.parse(r.body) as { messageId: string }).messageId)
      expect(sentIds.sort()).toEqual([uIdentify.messageId, vIdentify.messageId, vTrack.messageId].sort())
      const failed = response.batchItemFailures.map((f) => f.itemIdentifier)
      expect(failed.sort()).toEqual([recordOf(uIdentify), recordOf(uTrack)].sort())
      const visibility = visibilityOf(relay)
      const identifyBack = visibility.get(recordOf(uIdentify)) as number
      const trackBack = visibility.get(recordOf(uTrack)) as number
      expect(identifyBack).toBeGreaterThan(0)
      expect(Math.abs(trackBack - identifyBack)).toBeLessThan(1)
    } finally {
      await relay.stop()
      await courier.stop()
    }
  })

  it('lets a dead-lettered record go and delivers the user’s later records', async () => {
    // Prepare: Courier refuses u's identify for good (400)
    const courier = await startHttpStub()
    const relay = await startTestRelay({ COURIER_BASE_URL: courier.url }, { queueType })
    try {
      const [uIdentify, uTrack] = signUp('u')
      courier.handle((request, response, raw) =>
        reply(request.body.includes(uIdentify.messageId) ? 400 : 202, {
          message: 'bad',
          type: 'invalid_request_error',
        })(request, response, raw),
      )
      await enqueueEvents(relay, [uIdentify, uTrack])

      // Act
      const response = await invokeDeliver(relay.deliver(), await receiveRecords(relay), relay)

      // Assess
      expect(response.batchItemFailures).toEqual([])
      expect(courier.requests).toHaveLength(2)
      const [dead] = dlqMessages(relay)
      expect(dead?.body).toBe(JSON.stringify(uIdentify))
      if (queueType === 'fifo') {
        expect(dead?.messageGroupId).toBe('user:u')
        expect(dead?.messageDeduplicationId).toMatch(/^dead:/)
      }
    } finally {
      await relay.stop()
      await courier.stop()
    }
  })
})

describe('a standard queue', () => {
  it('runs the whole relay: ingest, delivery and dead letters without FIFO ids', async () => {
    const relay = await startTestRelay({}, { queueType: 'standard' })
    try {
      const config = parseConfig(relay.env)
      expect(config.queue.fifo).toBe(false)
      const events = signUp('s')
      const answer = await ingestHandlerFor(relay)(
        segmentRequest(JSON.stringify([...events, { type: 'track' }])),
        createLambdaContext('ingest', 6_000),
      )
      expect(answer.statusCode).toBe(200)
      const deliver = createDeliverHandler({ config, sqs: relay.queues.sqs, logger: createLogger('t') })

      await invokeDeliver(deliver, await receiveRecords(relay), relay)

      expect(relay.sandbox.delivered().map((r) => r.messageId)).toEqual(events.map((e) => e.messageId))
      expect(dlqMessages(relay).map((m) => m.messageGroupId)).toEqual([undefined])
    } finally {
      await relay.stop()
    }
  })
})
