import type { SQSBatchResponse, SQSEvent } from 'aws-lambda'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { parseConfig } from '../../lib/config.ts'
import { createIngestHandler } from '../../lib/ingest/handler.ts'
import type { SandboxFaults } from '../../lib/local/courier-sandbox.ts'
import { startLocalServer } from '../../lib/local/server.ts'
import { type Poller, recordsToDelete, startPoller } from '../../lib/local/sqs-poller.ts'
import { createLogger } from '../../lib/telemetry.ts'
import { type EventFixture, identify, page, track } from '../support/fixtures.ts'
import { reorderedUsers } from '../support/order.ts'
import { untilStalled } from '../support/progress.ts'
import { startTestRelay, type TestRelay } from '../support/relay.ts'

/**
 * Soak with faults: 3,000 events (SOAK_EVENTS for more or fewer; each fault phase meets a few
 * hundred fresh ones) through the pieces `npm start` runs (HTTP front door → ingest → embedded
 * SQS → event source poller → deliver → Courier sandbox) while the sandbox cycles through 429s
 * with and without Retry-After, 5xx, answers slower than the client timeout, dropped connections
 * and a full outage. Its waits are bounded by progress (untilStalled), so a busy machine only
 * makes it slower, and a hang fails it.
 */

const EVENTS = Number(process.env.SOAK_EVENTS ?? 3_000)
const PHASE_MS = 1_500
// 5xx, timeouts and resets come before the 429s: a 429 makes deliver slow down (it learns
// Courier's limit), and a phase met by few requests would test little.
const PHASES: Partial<SandboxFaults>[] = [
  { serverErrorShare: 0.3 },
  { latencyMs: 400 }, // past COURIER_TIMEOUT_MS: Courier did the work, the relay saw a timeout
  { dropShare: 0.2 },
  { rateLimitShare: 0.3, retryAfter: { seconds: 1 } },
  { rateLimitShare: 0.3, retryAfter: 'none' },
  { outage: true },
  { outage: true, outageMode: 'refuse' },
  { rateLimitShare: 0.1, serverErrorShare: 0.1, dropShare: 0.05, retryAfter: { ms: 500 } },
]
const HEALTHY: Partial<SandboxFaults> = {
  rateLimitShare: 0,
  serverErrorShare: 0,
  dropShare: 0,
  latencyMs: 0,
  outage: false,
  outageMode: 'error',
  retryAfter: 'none',
}

let relay: TestRelay

beforeAll(async () => {
  relay = await startTestRelay(
    { COURIER_TIMEOUT_MS: '250', RETRY_AFTER_MAX_SECONDS: '2', DELIVERY_CONCURRENCY: '10' },
    { visibilityTimeoutSeconds: 30 },
  )
})
afterAll(async () => {
  await relay.stop()
})

it(`delivers every one of ${EVENTS} events through 429s, 5xx, timeouts, resets and an outage`, async () => {
  // Prepare: the HTTP front door and the event source, watched so every deletion can be checked
  const server = await startLocalServer(
    createIngestHandler({
      config: parseConfig(relay.env),
      sqs: relay.queues.sqs,
      logger: createLogger('soak'),
    }),
  )
  const deliveredIds = () => new Set(relay.sandbox.delivered().map((r) => r.messageId))
  const deletedUndelivered: string[] = []
  // One deliver instance per concurrent poller, as Lambda runs them, each watched.
  const watched =
    (deliver: ReturnType<TestRelay['deliver']>) =>
    async (event: SQSEvent, context: Parameters<typeof deliver>[1]): Promise<SQSBatchResponse> => {
      const response = await deliver(event, context)
      const delivered = deliveredIds()
      for (const record of recordsToDelete(event.Records, response)) {
        const { messageId, type } = JSON.parse(record.body) as { messageId: string; type: string }
        if (type !== 'page' && !delivered.has(messageId)) deletedUndelivered.push(messageId)
      }
      return response
    }
  const poller: Poller = startPoller({
    sqs: relay.queues.sqs,
    queueUrl: relay.queues.queueUrl,
    queueArn: relay.queues.queueArn,
    handler: Array.from({ length: 4 }, () => watched(relay.deliver())),
    waitTimeSeconds: 1,
    maxConcurrency: 4,
    functionTimeoutMs: 60_000,
    onError: () => undefined,
  })
  // 1,000 users, each with a few events spread over the whole run
  const events: EventFixture[] = Array.from({ length: EVENTS }, (_, i) => {
    const user = { userId: `user-${i % 1_000}` }
    return i % 50 === 0 ? page(user) : i % 2 ? track(user) : identify(user)
  })
  const post = async (batch: EventFixture[]) => {
    const body = batch.length === 1 ? JSON.stringify(batch[0]) : JSON.stringify(batch)
    const response = await fetch(server.url, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    })
    expect(response.status).toBe(200)
  }

  try {
    // Act: post while the faults cycle, then let Courier recover
    const posting = (async () => {
      for (let i = 0; i < events.length; i += 100) {
        await post(events.slice(i, i + 97))
        for (const single of events.slice(i + 97, i + 100)) await post([single])
        // Spread the posts over every fault phase, so each phase meets fresh events.
        await new Promise((resolve) => setTimeout(resolve, (PHASES.length * PHASE_MS) / (EVENTS / 100)))
      }
    })()
    for (const phase of PHASES) {
      relay.sandbox.setFaults({ ...HEALTHY, ...phase })
      await new Promise((resolve) => setTimeout(resolve, PHASE_MS))
    }
    relay.sandbox.setFaults(HEALTHY)
    await posting
    const expected = events.filter((e) => e.type !== 'page').map((e) => e.messageId)
    // Progress: every request Courier sees and every invocation, whatever it answers.
    const work = () => relay.sandbox.received.length + poller.stats.invocations
    await untilStalled(() => expected.every((id) => deliveredIds().has(id)), work, {
      what: 'every event delivered',
    })
    await untilStalled(
      () =>
        relay.queues.server.inspectQueue(relay.queues.queueUrl.split('/').pop() as string)?.messages.inflight
          .length === 0 && poller.stats.records > 0,
      work,
      { what: 'queue drained' },
    )
  } finally {
    await poller.stop()
    await server.stop()
  }

  // Assess
  const statuses = new Map<number, number>()
  for (const r of relay.sandbox.received) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
  const deliveries = new Map<string, number>()
  for (const r of relay.sandbox.delivered())
    deliveries.set(r.messageId as string, (deliveries.get(r.messageId as string) ?? 0) + 1)
  const duplicates = [...deliveries.values()].filter((n) => n > 1).length
  console.log(
    `soak: ${EVENTS} events, ${relay.sandbox.received.length} Courier requests, answers ${JSON.stringify(Object.fromEntries(statuses))}, ` +
      `${duplicates} events delivered more than once (Courier dedupes them on messageId), ${poller.stats.invocations} invocations`,
  )
  expect(deletedUndelivered).toEqual([])
  expect(
    relay.queues.server.inspectQueue(relay.queues.dlqUrl.split('/').pop() as string)?.messages.ready,
  ).toEqual([])
  for (const status of [429, 500, 503]) expect(statuses.get(status) ?? 0).toBeGreaterThan(0)
  expect(deliveries.size).toBe(events.filter((e) => e.type !== 'page').length)
  // FIFO: every user's events reached Courier in the order they were posted, faults or not.
  expect(reorderedUsers(events, relay.sandbox.received)).toEqual([])
  // No time budget: untilStalled fails a hang; this only stops a runaway run.
}, 900_000)
