import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from '@aws-sdk/client-sqs'
import type { SQSRecord } from 'aws-lambda'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { createAudienceSyncHandler, listWritePacerFor } from '../../lib/audiences/handler.ts'
import { AUDIENCE_SYNC_INSTANCES, listSyncMarginMs } from '../../lib/audiences/list-sync.ts'
import {
  createDynamoDbClient,
  createMembershipLedger,
  type MembershipLedger,
} from '../../lib/audiences/membership-ledger.ts'
import { parseConfig } from '../../lib/config.ts'
import { courierFrom } from '../../lib/courier/from-config.ts'
import { createPacer, type PacerFor, rateParamsFor, unpaced } from '../../lib/courier/pacer.ts'
import { rateAfter } from '../../lib/courier/rate-control.ts'
import { createLambdaContext } from '../../lib/local/lambda-context.ts'
import { recordsToDelete, startPoller, toSqsRecord } from '../../lib/local/sqs-poller.ts'
import { EXCEPTION_RECEIVES } from '../../lib/queue/expiry.ts'
import { createLogger, createMetrics } from '../../lib/telemetry.ts'
import { failOnce, listWrites, seedCourier, subscriptions } from '../support/courier-state.ts'
import {
  audienceIdentify,
  audienceTrack,
  deletion,
  type EventFixture,
  identify,
  track,
} from '../support/fixtures.ts'
import { untilStalled } from '../support/progress.ts'
import { clearQueues, peek } from '../support/queues.ts'
import {
  enqueueEvents,
  invokeDeliver,
  receiveRecords,
  startTestRelay,
  type TestRelay,
  until,
} from '../support/relay.ts'

/**
 * Engage audiences → Courier lists (lib/audiences/list-sync.ts): deliver hands audience events
 * to the audience queue, the list sync writes them in bulk. Courier here is the Courier sandbox,
 * with its 20-a-minute limit on list writes.
 */

let relay: TestRelay
let table = 0

beforeAll(async () => {
  relay = await startTestRelay()
})
afterAll(async () => {
  await relay.stop()
})
beforeEach(async () => {
  relay.sandbox.reset()
  clearQueues(relay.queues)
  // A fresh membership ledger per test: a table of its own in the embedded DynamoDB.
  table += 1
  ledgerTable = `memberships-${table}`
  await relay.dynamodb.createTable(ledgerTable)
})

let ledgerTable: string
/** One list sync instance's membership ledger: its own client on the test's table, as each Lambda instance has. */
const instanceLedger = () => relay.ledger(ledgerTable)

const LIST = 'order_completed_last_30days-aud_1'
const at = (second: number) => `2026-11-28T12:00:${String(second).padStart(2, '0')}.000Z`
/** List writes paced fast enough for a test; the benchmark measures Courier's real 20 a minute. */
const fastLists: PacerFor = (endpoint) => (endpoint === 'lists' ? createPacer(50) : unpaced)

const audienceQueue = () => peek(relay.queues, relay.queues.audienceQueueUrl)

const syncHandler = (overrides: Parameters<typeof createAudienceSyncHandler>[0] = {}) =>
  createAudienceSyncHandler({
    config: parseConfig(relay.env),
    sqs: relay.queues.sqs,
    logger: createLogger('audiences-test'),
    pacerFor: fastLists,
    ledger: instanceLedger(),
    ...overrides,
  })

/** Puts events straight on the audience queue, as deliver hands them over. */
const toAudienceQueue = async (events: readonly EventFixture[]) => {
  for (let i = 0; i < events.length; i += 10) {
    await relay.queues.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: relay.queues.audienceQueueUrl,
        Entries: events.slice(i, i + 10).map((event, index) => ({
          Id: String(index),
          MessageBody: JSON.stringify(event),
        })),
      }),
    )
  }
}

/** Up to `max` audience-queue records in one batch, as the event source gathers them. */
const audienceRecords = async (max = 100): Promise<SQSRecord[]> => {
  const records: SQSRecord[] = []
  while (records.length < max) {
    const { Messages = [] } = await relay.queues.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: relay.queues.audienceQueueUrl,
        MaxNumberOfMessages: 10,
        MessageSystemAttributeNames: ['All'],
      }),
    )
    if (Messages.length === 0) break
    records.push(...Messages.map((m) => toSqsRecord(m, relay.queues.audienceQueueArn, 'us-east-1')))
  }
  return records
}

/** One invocation, then what the event source does: delete every record not reported as failed. */
const sync = (handler: ReturnType<typeof syncHandler>, records: SQSRecord[]) =>
  syncWithin(handler, records, 60_000)

const subscribed = () => [...subscriptions(relay.sandbox)].sort()

/** The requests Courier answered, in the order it answered them. */
const answered = () => relay.sandbox.received

/** Courier answering `method` requests `ms` late: their effect lands when the answer goes. */
const delayed = (method: string, ms: number) => relay.sandbox.setFaults({ methodLatencyMs: { [method]: ms } })

/** One invocation of `remainingMs`, then what the event source does: delete every record not reported as failed. */
const syncWithin = async (
  handler: ReturnType<typeof syncHandler>,
  records: SQSRecord[],
  remainingMs: number,
) => {
  const response = await handler({ Records: records }, createLambdaContext('audiences', remainingMs))
  const done = recordsToDelete(records, response)
  for (let i = 0; i < done.length; i += 10) {
    await relay.queues.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: relay.queues.audienceQueueUrl,
        Entries: done.slice(i, i + 10).map((r, j) => ({ Id: String(j), ReceiptHandle: r.receiptHandle })),
      }),
    )
  }
  return response
}

describe('deliver hands audience events to the list sync, off the user’s ordered path', () => {
  it('sends the audience event to /inbound/segment for the profile and puts it on the audience queue', async () => {
    // Prepare
    const entered = audienceIdentify({ inAudience: true })
    const plain = identify()
    await enqueueEvents(relay, [entered, plain])

    // Act
    const response = await invokeDeliver(relay.deliver(), await receiveRecords(relay), relay)

    // Assess: both reached the profile; only the audience event waits for the list sync
    expect(response.batchItemFailures).toEqual([])
    const inbound = answered()
      .filter((r) => r.path === '/inbound/segment')
      .map((r) => JSON.parse(r.text ?? 'null'))
    expect(inbound.map((e) => e.messageId).sort()).toEqual([entered.messageId, plain.messageId].sort())
    expect(audienceQueue().map((m) => m.body)).toEqual([JSON.stringify(entered)])
    expect(answered().some((r) => r.path.startsWith('/lists/'))).toBe(false)
  })

  it('hands a user deletion to the list sync too, after deleting the person in Courier', async () => {
    const deleted = deletion({ userId: 'u-1' })
    await enqueueEvents(relay, [deleted])

    const response = await invokeDeliver(relay.deliver(), await receiveRecords(relay), relay)

    expect(response.batchItemFailures).toEqual([])
    expect(answered().map((r) => `${r.method} ${r.path}`)).toContain('DELETE /profiles/u-1/lists')
    expect(audienceQueue().map((m) => m.body)).toEqual([JSON.stringify(deleted)])
  })

  it('leaves lists alone with COURIER_AUDIENCE_LISTS=false', async () => {
    await enqueueEvents(relay, [audienceIdentify({ inAudience: true })])
    const handler = relay.deliver({ config: parseConfig({ ...relay.env, COURIER_AUDIENCE_LISTS: 'false' }) })

    const response = await invokeDeliver(handler, await receiveRecords(relay), relay)

    expect(response.batchItemFailures).toEqual([])
    expect(audienceQueue()).toHaveLength(0)
  })

  it('delivers a user’s track at once while Courier refuses every list write', async () => {
    // Prepare: Courier's list limit is used up; the user enters an audience, then acts
    await seedCourier(
      relay.sandbox,
      Array.from({ length: 20 }, (_, i) => ['PUT', `/lists/other-${i}`, { name: `other ${i}` }] as const),
    )
    const entered = audienceTrack({ inAudience: true, userId: 'u-9' })
    const next = track({ userId: 'u-9', event: 'Order Completed' })
    await enqueueEvents(relay, [entered, next])

    // Act: deliver, then one list sync attempt
    const delivered = await invokeDeliver(relay.deliver(), await receiveRecords(relay), relay)
    const synced = await sync(syncHandler(), await audienceRecords())

    // Assess: the track went through with no wait; only the list change waits, on its own queue
    expect(delivered.batchItemFailures).toEqual([])
    expect(answered().filter((r) => r.path === '/inbound/segment')).toHaveLength(2)
    expect(synced.batchItemFailures).toHaveLength(1)
    expect(listWrites(answered()).map((w) => w.status)).toEqual([429])
    expect(audienceQueue()).toHaveLength(1)
  })
})

describe('the list sync', () => {
  it.each([
    ['identify', audienceIdentify],
    ['track', audienceTrack],
  ])('subscribes on enter and unsubscribes on exit (%s form)', async (_form, make) => {
    // Prepare
    await seedCourier(relay.sandbox, [['PUT', `/lists/${LIST}/subscriptions/u-out`]])
    await toAudienceQueue([
      make({ inAudience: true, userId: 'u-in' }),
      make({ inAudience: false, userId: 'u-out' }),
    ])

    // Act
    const response = await sync(syncHandler(), await audienceRecords())

    // Assess
    expect(response.batchItemFailures).toEqual([])
    expect(subscribed()).toEqual([`${LIST} u-in`])
    const post = answered().find((r) => r.method === 'POST')
    expect(post?.path).toBe(`/lists/${LIST}/subscriptions`)
    expect(JSON.parse(post?.text ?? '{}')).toEqual({ recipients: [{ recipientId: 'u-in' }] })
    expect(
      answered()
        .filter((r) => r.method === 'DELETE')
        .map((r) => r.path),
    ).toEqual([`/lists/${LIST}/subscriptions/u-out`])
  })

  it('lets the later Segment event win when a pair arrives out of order in one batch', async () => {
    // Prepare: the exit (12:00:05) arrives before the enter (12:00:01) it follows
    await toAudienceQueue([
      audienceIdentify({ inAudience: false, userId: 'u-1', timestamp: at(5) }),
      audienceIdentify({ inAudience: true, userId: 'u-1', timestamp: at(1) }),
    ])

    const response = await sync(syncHandler(), await audienceRecords())

    expect(response.batchItemFailures).toEqual([])
    expect(subscribed()).toEqual([])
    expect(answered().some((r) => r.method === 'POST')).toBe(false)
  })

  it('lets the later Segment event win when the older one arrives in a later batch, at another instance', async () => {
    // Prepare: instance A applies the enter (12:00:09); the older exit (12:00:02) reaches
    // instance B later, which has never seen this member (a cold start)
    await toAudienceQueue([audienceTrack({ inAudience: true, userId: 'u-1', timestamp: at(9) })])
    await sync(syncHandler(), await audienceRecords())
    await toAudienceQueue([audienceTrack({ inAudience: false, userId: 'u-1', timestamp: at(2) })])

    // Act
    const late = await sync(syncHandler(), await audienceRecords())

    // Assess: the stale exit is done without a write; the member stays
    expect(late.batchItemFailures).toEqual([])
    expect(subscribed()).toEqual([`${LIST} u-1`])
    expect(answered().some((r) => r.method === 'DELETE')).toBe(false)
    expect(audienceQueue()).toHaveLength(0)
  })

  it('applies an exit that really is later, at another instance', async () => {
    await toAudienceQueue([audienceTrack({ inAudience: true, userId: 'u-1', timestamp: at(1) })])
    await sync(syncHandler(), await audienceRecords())
    await toAudienceQueue([audienceTrack({ inAudience: false, userId: 'u-1', timestamp: at(2) })])

    await sync(syncHandler(), await audienceRecords())

    expect(subscribed()).toEqual([])
  })

  it('lets the later event win when two instances write one list at once (the older write lands last without the lease)', async () => {
    // Prepare: Courier takes 400 ms to answer the older enter's POST; meanwhile another instance
    // holds the later exit of the same member
    delayed('POST', 400)
    await toAudienceQueue([audienceTrack({ inAudience: true, userId: 'u-1', timestamp: at(1) })])
    const enterRecords = await audienceRecords()
    await toAudienceQueue([audienceTrack({ inAudience: false, userId: 'u-1', timestamp: at(5) })])
    const exitRecords = await audienceRecords()

    // Act: instance A starts its POST; instance B runs while it is in flight
    const a = sync(syncHandler(), enterRecords)
    await until(() => relay.sandbox.inFlight() > 0, 5_000, 'the enter POST started')
    const b = sync(syncHandler(), exitRecords)
    const [first, second] = await Promise.all([a, b])

    // Assess: B waited for A's write, then removed the member: the later event won
    expect(first.batchItemFailures).toEqual([])
    expect(second.batchItemFailures).toEqual([])
    expect(subscribed()).toEqual([])
    expect(answered().map((r) => r.method)).toEqual(['POST', 'DELETE'])
  })

  it('keeps a deleted person off the list when an older enter arrives after the deletion, in the same batch or later', async () => {
    // Prepare: u-1 entered at 12:00:01 and was deleted at 12:00:05; u-2 entered after its deletion
    await toAudienceQueue([
      audienceIdentify({ inAudience: true, userId: 'u-1', timestamp: at(1) }),
      deletion({ userId: 'u-1', timestamp: at(5) }),
      deletion({ userId: 'u-2', timestamp: at(2) }),
    ])
    await sync(syncHandler(), await audienceRecords())
    await toAudienceQueue([
      audienceTrack({ inAudience: true, userId: 'u-1', timestamp: at(3) }),
      audienceTrack({ inAudience: true, userId: 'u-2', timestamp: at(4) }),
    ])

    // Act
    const late = await sync(syncHandler(), await audienceRecords())

    // Assess: only the change made after its person's deletion is on the list
    expect(late.batchItemFailures).toEqual([])
    expect(subscribed()).toEqual([`${LIST} u-2`])
    expect(audienceQueue()).toHaveLength(0)
  })

  it('removes the subscription again when a deletion lands while an older enter’s POST is in flight', async () => {
    // Prepare: Courier takes 400 ms to carry out the enter's POST; the deletion comes meanwhile
    delayed('POST', 400)
    await toAudienceQueue([audienceTrack({ inAudience: true, userId: 'u-1', timestamp: at(1) })])
    const enterRecords = await audienceRecords()
    await toAudienceQueue([deletion({ userId: 'u-1', timestamp: at(5) })])
    const deletionRecords = await audienceRecords()

    // Act: the deletion's DELETE /profiles/u-1/lists reaches Courier before the POST is carried out
    const enter = sync(syncHandler(), enterRecords)
    await until(() => relay.sandbox.inFlight() > 0, 5_000, 'the enter POST started')
    await sync(syncHandler(), deletionRecords)
    const inFlightAfterDeletion = relay.sandbox.inFlight()
    const response = await enter

    // Assess: the person is not on the list; Courier carried out the deletion while the POST was
    // still in flight, then the POST, then the removal again (the log is in answer order)
    expect(response.batchItemFailures).toEqual([])
    expect(subscribed()).toEqual([])
    expect(inFlightAfterDeletion).toBe(1)
    expect(answered().map((r) => `${r.method} ${r.path}`)).toEqual([
      'DELETE /profiles/u-1/lists',
      `POST /lists/${LIST}/subscriptions`,
      `DELETE /lists/${LIST}/subscriptions/u-1`,
    ])
  })

  it('retries the records of a list another instance holds past the deadline, and keeps them queued', async () => {
    // Prepare: another instance holds the list's lease for longer than this invocation may wait
    let release = () => {}
    const holder = instanceLedger().withList(
      LIST,
      { waitUntil: Date.now() + 1_000, holdUntil: Date.now() + 60_000 },
      () =>
        new Promise<void>((resolve) => {
          release = resolve
        }),
    )
    await toAudienceQueue([audienceIdentify({ inAudience: true, userId: 'u-1' })])

    // Act: an invocation with 1.5 s to spare after its finishing margin
    const response = await syncWithin(syncHandler(), await audienceRecords(), listSyncMarginMs() + 1_500)
    release()
    await holder

    // Assess
    expect(response.batchItemFailures).toHaveLength(1)
    expect(answered()).toEqual([])
    expect(audienceQueue()).toHaveLength(1)
  })

  it('retries, never drops, when the membership ledger cannot be reached', async () => {
    // Prepare: a ledger whose DynamoDB is down (nothing listens on the port)
    const down = createMembershipLedger(
      createDynamoDbClient({
        endpoint: 'http://127.0.0.1:9',
        region: 'us-east-1',
        credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      }),
      ledgerTable,
    )
    await toAudienceQueue([audienceIdentify({ inAudience: true, userId: 'u-1' })])

    // Act
    const response = await sync(syncHandler({ ledger: down }), await audienceRecords())

    // Assess: nothing written, the record is back on the queue
    expect(response.batchItemFailures).toHaveLength(1)
    expect(answered()).toEqual([])
    expect(audienceQueue()).toHaveLength(1)
    expect(peek(relay.queues, relay.queues.dlqUrl)).toHaveLength(0)
  })

  it('retries a write Courier took but the ledger did not record, and records it on the retry', async () => {
    // Prepare: the ledger fails once while recording (DynamoDB throttling, say), after Courier took the POST
    const ledger = instanceLedger()
    let failures = 1
    const flaky: MembershipLedger = {
      ...ledger,
      recordApplied: async (...args) => {
        if (failures-- > 0) throw new Error('ProvisionedThroughputExceededException')
        return ledger.recordApplied(...args)
      },
    }
    await toAudienceQueue([audienceIdentify({ inAudience: true, userId: 'u-1', timestamp: at(3) })])
    const records = await audienceRecords()

    // Act
    const first = await sync(syncHandler({ ledger: flaky }), records)
    // The record comes back once its retry delay is over (RETRY_BASE_SECONDS 1 here, with jitter).
    let retried: SQSRecord[] = []
    for (const started = Date.now(); retried.length === 0 && Date.now() - started < 10_000; ) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      retried = await audienceRecords()
    }
    const again = await sync(syncHandler({ ledger: flaky }), retried)

    // Assess: back on the queue after the first, written again (harmless) and recorded by the second
    expect(first.batchItemFailures).toHaveLength(1)
    expect(again.batchItemFailures).toEqual([])
    expect(answered().filter((r) => r.method === 'POST')).toHaveLength(2)
    expect(subscribed()).toEqual([`${LIST} u-1`])
    expect((await instanceLedger().lastApplied(LIST, ['u-1'])).get('u-1')?.at).toBe(Date.parse(at(3)))
    expect(audienceQueue()).toHaveLength(0)
  })

  it('dead-letters an audience change older than the ledger’s 35-day memory instead of applying it', async () => {
    // Prepare: an enter from 40 days ago (redriven late, say)
    const old = new Date(Date.now() - 40 * 86_400_000).toISOString()
    await toAudienceQueue([audienceIdentify({ inAudience: true, userId: 'u-1', timestamp: old })])

    // Act
    const response = await sync(syncHandler(), await audienceRecords())

    // Assess: nothing written; in the DLQ with why
    expect(response.batchItemFailures).toEqual([])
    expect(answered()).toEqual([])
    expect(peek(relay.queues, relay.queues.dlqUrl)[0]?.messageAttributes.reason?.StringValue).toMatch(
      /older than the membership ledger's 35-day memory/,
    )
  })

  it('dead-letters a list change still failing after MAX_EVENT_AGE_SECONDS, with the reason', async () => {
    // Prepare: Courier fails the write; SQS took the record 3 days ago (MAX_EVENT_AGE_SECONDS is 2 days here)
    failOnce(relay.sandbox, 'POST', `/lists/${LIST}/subscriptions`, 503)
    await toAudienceQueue([audienceIdentify({ inAudience: true, userId: 'u-1' })])
    const records = (await audienceRecords()).map((record) => ({
      ...record,
      attributes: { ...record.attributes, SentTimestamp: String(Date.now() - 3 * 86_400_000) },
    }))

    // Act
    const response = await sync(
      syncHandler({ config: parseConfig({ ...relay.env, MAX_EVENT_AGE_SECONDS: String(2 * 86_400) }) }),
      records,
    )

    // Assess: off the audience queue, in the DLQ with why
    expect(response.batchItemFailures).toEqual([])
    expect(audienceQueue()).toHaveLength(0)
    const dead = peek(relay.queues, relay.queues.dlqUrl)
    expect(dead).toHaveLength(1)
    expect(dead[0]?.messageAttributes.reason?.StringValue).toMatch(
      /^expired after 3\.0 days of retries.*last: .*503/,
    )
    expect(dead[0]?.messageAttributes.stage?.StringValue).toBe('audience-sync')
  })

  it('syncs an initial audience of 10,000 members in 10 list writes, within Courier’s 20 a minute, none refused', {
    // No time budget: untilStalled fails a hang; this only stops a runaway run.
    timeout: 600_000,
  }, async () => {
    // Prepare: what Engage sends for a new audience, one call per member
    const members = Array.from({ length: 10_000 }, (_, i) => `member-${i}`)
    const queueName = relay.queues.audienceQueueUrl.split('/').pop() as string
    for (const userId of members) {
      relay.queues.server.sendMessage(
        queueName,
        JSON.stringify(audienceIdentify({ inAudience: true, userId })),
      )
    }
    const started = Date.now()

    // Act: the list sync drained as its event source does (batches of up to 1,000)
    const poller = startPoller({
      sqs: relay.queues.sqs,
      queueUrl: relay.queues.audienceQueueUrl,
      queueArn: relay.queues.audienceQueueArn,
      handler: syncHandler(),
      batchSize: 1_000,
      batchingWindowMs: 200,
      waitTimeSeconds: 1,
      functionTimeoutMs: 60_000,
    })
    try {
      // Bounded by progress, not the clock: a hang fails it, a busy machine only slows it.
      const size = () => relay.sandbox.state.lists.get(LIST)?.subscriptions.size ?? 0
      await untilStalled(
        () => size() === 10_000,
        // The list sync's invocations count too: each records its batch in the ledger first.
        () => relay.sandbox.received.length + size() + poller.stats.invocations,
        { what: 'every member subscribed', stallMs: 60_000 },
      )
      console.log(
        `audience sync test: 10,000 members subscribed in ${Date.now() - started} ms (list writes paced at 50/s here)`,
      )
    } finally {
      await poller.stop()
    }

    // Assess
    expect(subscribed()).toEqual(members.map((userId) => `${LIST} ${userId}`).sort())
    expect(listWrites(answered()).map((w) => w.status)).toEqual(Array(10).fill(204))
    expect(listWrites(answered()).every((w) => w.recipients === 1_000)).toBe(true)
  })

  it('retries a list write Courier answers 5xx, and dead-letters what is not an audience event', async () => {
    failOnce(relay.sandbox, 'POST', `/lists/${LIST}/subscriptions`, 503)
    await toAudienceQueue([audienceIdentify({ inAudience: true, userId: 'u-1' }), identify()])

    const response = await sync(syncHandler(), await audienceRecords())

    expect(response.batchItemFailures).toHaveLength(1)
    expect(subscribed()).toEqual([])
    const dead = peek(relay.queues, relay.queues.dlqUrl)
    expect(dead).toHaveLength(1)
    expect(dead[0]?.messageAttributes.reason?.StringValue).toBe('not an Engage audience event')
    expect(dead[0]?.messageAttributes.stage?.StringValue).toBe('audience-sync')
  })

  it('counts its records in metrics, and dead-letters with the event’s messageId and type as deliver does', async () => {
    // Prepare: one member who enters, one Courier refuses for good, one event that is no audience event
    const metrics = createMetrics('test')
    const added = vi.spyOn(metrics, 'addMetric')
    failOnce(relay.sandbox, 'POST', '/lists/other-aud_2/subscriptions', 400)
    const notAudience = identify()
    await toAudienceQueue([
      audienceIdentify({ inAudience: true, userId: 'u-1' }),
      audienceIdentify({ inAudience: true, userId: 'u-2', key: 'other', id: 'aud_2' }),
      notAudience,
    ])

    // Act
    const response = await sync(syncHandler({ metrics }), await audienceRecords())

    // Assess
    expect(response.batchItemFailures).toEqual([])
    const counts = Object.fromEntries(added.mock.calls.map(([name, , value]) => [name, value]))
    expect(counts).toEqual({ Delivered: 1, DeadLettered: 2 })
    const dead = peek(relay.queues, relay.queues.dlqUrl)
    const bodies = dead.map((m) => JSON.parse(m.body) as { messageId: string })
    const byId = (id: string) => dead[bodies.findIndex((b) => b.messageId === id)]
    expect(byId(notAudience.messageId)?.messageAttributes.messageId?.StringValue).toBe(notAudience.messageId)
    expect(byId(notAudience.messageId)?.messageAttributes.type?.StringValue).toBe('identify')
  })
})

describe('member ids that cannot be a path segment', () => {
  it.each(['.', '..'])('never unsubscribes %j by a path that resolves to the list itself', async (userId) => {
    // Prepare: DELETE /lists/{id}/subscriptions/.. would be DELETE /lists/{id}
    await seedCourier(relay.sandbox, [['PUT', `/lists/${LIST}/subscriptions/someone-else`]])
    await toAudienceQueue([audienceIdentify({ inAudience: false, userId })])

    // Act
    const response = await sync(syncHandler(), await audienceRecords())

    // Assess
    expect(response.batchItemFailures).toEqual([])
    expect(answered().filter((r) => r.method === 'DELETE')).toEqual([])
    expect(subscribed()).toEqual([`${LIST} someone-else`])
    expect(peek(relay.queues, relay.queues.dlqUrl)[0]?.messageAttributes.reason?.StringValue).toMatch(
      /cannot be a path segment/,
    )
  })
})

describe('an exception while syncing one record', () => {
  it('fails that record alone, and dead-letters it with its reason after a few receives', async () => {
    // Prepare: two people whose removals hit a bug (planted in the Courier client, as a bug in our
    // code would throw): one leaves the list beside members who enter and leave, one is deleted
    const bad = 'buggy-'
    await seedCourier(relay.sandbox, [['PUT', `/lists/${LIST}/subscriptions/bob`]])
    const leaving = audienceIdentify({ inAudience: false, userId: `${bad}leaving` })
    const deleted = deletion({ userId: `${bad}deleted` })
    const neighbours = [
      audienceIdentify({ inAudience: true, userId: 'ada' }),
      audienceIdentify({ inAudience: false, userId: 'bob' }),
    ]
    await toAudienceQueue([neighbours[0]!, leaving, deleted, neighbours[1]!])
    const real = courierFrom(parseConfig(relay.env))
    const handler = syncHandler({
      courier: {
        send: (request, options) => {
          if (request.method === 'DELETE' && request.path.includes(bad)) throw new TypeError('planted bug')
          return real.send(request, options)
        },
      },
    })

    // Act
    const first = await audienceRecords()
    const response = await sync(handler, first)

    // Assess: the neighbours' changes are written; only the two bad records come back
    const badIds = first
      .filter((r) => [leaving.messageId, deleted.messageId].includes(JSON.parse(r.body).messageId))
      .map((r) => r.messageId)
    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(badIds.sort())
    expect(subscribed()).toEqual([`${LIST} ada`])

    // Act: received again as SQS hands them back, until they are given up on
    let inFlight = first.filter((r) => badIds.includes(r.messageId))
    for (let round = 0; round < 10 && inFlight.length > 0; round++) {
      await relay.queues.sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: relay.queues.audienceQueueUrl,
          Entries: inFlight.map((r, i) => ({
            Id: String(i),
            ReceiptHandle: r.receiptHandle,
            VisibilityTimeout: 0,
          })),
        }),
      )
      const records = await audienceRecords()
      const failures = (await sync(handler, records)).batchItemFailures.map((f) => f.itemIdentifier)
      inFlight = records.filter((r) => failures.includes(r.messageId))
    }

    // Assess: both in the DLQ with the error, on their EXCEPTION_RECEIVES-th receive; Courier got none of the bug's calls
    const dead = peek(relay.queues, relay.queues.dlqUrl)
    expect(dead.map((m) => m.messageAttributes.messageId?.StringValue).sort()).toEqual(
      [leaving.messageId, deleted.messageId].sort(),
    )
    for (const message of dead) {
      expect(message.messageAttributes.reason?.StringValue).toMatch(
        new RegExp(`^failed with an exception on ${EXCEPTION_RECEIVES} receives: .*TypeError`),
      )
      expect(message.messageAttributes.stage?.StringValue).toBe('audience-sync')
    }
    expect(audienceQueue()).toHaveLength(0)
    expect(answered().filter((r) => r.method === 'DELETE')).toHaveLength(1)
  })
})

describe('the list sync’s pacing', () => {
  it('starts list writes at Courier’s published 20 a minute, split over the instances that may run at once', () => {
    const lists = listWritePacerFor()('lists')

    expect(lists.ratePerSecond()).toBeCloseTo(20 / 60 / AUDIENCE_SYNC_INSTANCES, 6)
  })

  it('never climbs above Courier’s published 20 a minute, however many writes Courier takes', () => {
    // Prepare: 200 list writes, each waiting for its slot and each taken by Courier
    const params = rateParamsFor('lists', { maxRps: undefined, instances: AUDIENCE_SYNC_INSTANCES })
    const answers = Array.from({ length: 200 }, (_, i) => ({
      kind: 'success' as const,
      sentAt: i * 6_000,
      at: i * 6_000 + 100,
      saturated: true,
    }))

    // Act
    const rates = rateAfter(answers, params)

    // Assess
    expect(Math.max(...rates)).toBeCloseTo(20 / 60 / AUDIENCE_SYNC_INSTANCES, 6)
  })
})
