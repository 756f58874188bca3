import type { SQSRecord } from 'aws-lambda'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { main as dlq } from '../../lib/cli/dlq.ts'
import { redrive } from '../../lib/cli/redrive.ts'
import { syncAudienceOnce } from '../support/audience-sync.ts'
import { audienceIdentify, identify, track } from '../support/fixtures.ts'
import { clearQueues } from '../support/queues.ts'
import {
  dlqMessages,
  enqueueEvents,
  invokeDeliver,
  receiveRecords,
  skipWait,
  startTestRelay,
  type TestRelay,
} from '../support/relay.ts'

/**
 * Erasure that holds, on the relay's real parts (embedded SQS, DynamoDB, the Courier sandbox):
 * after Segment deletes a person, nothing Segment received before the deletion reaches Courier,
 * however it comes back; what comes after it is delivered; a deletion is carried out once.
 */

let fifo: TestRelay
let standard: TestRelay
beforeAll(async () => {
  ;[fifo, standard] = await Promise.all([startTestRelay(), startTestRelay({}, { queueType: 'standard' })])
})
afterAll(async () => {
  await Promise.all([fifo?.stop(), standard?.stop()])
})
beforeEach(async () => {
  for (const relay of [fifo, standard]) {
    clearQueues(relay.queues)
    relay.sandbox.reset()
    await relay.forgetDeletions()
  }
})

const DELETED_AT = '2026-12-01T10:00:00.000Z'
const receivedBefore = (seconds: number) => new Date(Date.parse(DELETED_AT) - seconds * 1_000).toISOString()
const receivedAfter = (seconds: number) => new Date(Date.parse(DELETED_AT) + seconds * 1_000).toISOString()
/** Segment's deletion notification, as the classic Webhooks destination sends it (no messageId). */
const deletionOf = (userId: string) => JSON.stringify({ type: 'delete', userId, timestamp: DELETED_AT })

/** Every record on the queue now, through one deliver invocation each receive. */
const deliverAll = async (relay: TestRelay) => {
  const handler = relay.deliver()
  const outcomes: string[] = []
  for (let records = await receiveRecords(relay); records.length > 0; records = await receiveRecords(relay)) {
    const response = await invokeDeliver(handler, records, relay)
    outcomes.push(
      ...records.map((r) =>
        response.batchItemFailures.some((f) => f.itemIdentifier === r.messageId) ? 'retry' : 'done',
      ),
    )
  }
  return outcomes
}

const inbound = (relay: TestRelay, messageId: string) =>
  relay.sandbox.received.filter((r) => r.path === '/inbound/segment' && r.messageId === messageId)

describe('nothing from before a deletion reaches Courier after it', () => {
  it('a redrive after the deletion: the dead letter is moved back and erased, never resent nor dead-lettered again', async () => {
    // Prepare: Courier refuses the identify for good (it goes to the DLQ), then Segment deletes the person.
    const refused = identify({
      userId: 'u-redrive',
      receivedAt: receivedBefore(3_600),
      traits: { email: 'r@example.com' },
    })
    fifo.sandbox.setFaults({ failNext: [{ method: 'POST', path: '/inbound/segment', status: 400 }] })
    await enqueueEvents(fifo, [refused])
    await deliverAll(fifo)
    expect(dlqMessages(fifo)).toHaveLength(1)
    await enqueueEvents(fifo, [deletionOf('u-redrive')])
    await deliverAll(fifo)

    // Act: the operator looks, then the routine redrive, then deliver.
    const listed: string[] = []
    const dlqCode = await dlq(['--local', '--table', fifo.dynamodb.tableName], {
      env: {
        SQS_PORT: String(new URL(fifo.queues.endpoint).port),
        AWS_ENDPOINT_URL_DYNAMODB: fifo.dynamodb.endpoint,
      },
      out: (line) => listed.push(line),
      err: (line) => listed.push(line),
    })
    const moved = await redrive(fifo.queues.sqs, {
      dlqUrl: fifo.queues.dlqUrl,
      queueUrl: fifo.queues.queueUrl,
      mode: 'local',
      waitSeconds: 0,
    })
    const outcomes = await deliverAll(fifo)

    // Assess: moved, ended (deleted from the queue), no profile, nothing in the DLQ.
    expect(dlqCode).toBe(0)
    expect(listed.find((line) => line.includes(refused.messageId))).toContain(
      `[erased on redrive: person deleted ${DELETED_AT}]`,
    )
    expect(listed.at(-1)).toContain('1 of them of people deleted since')
    expect(moved).toMatchObject({ moved: 1 })
    expect(outcomes).toEqual(['done'])
    expect(inbound(fifo, refused.messageId)).toHaveLength(1) // only the refused first attempt
    expect(fifo.sandbox.state.profiles.has('u-redrive')).toBe(false)
    expect(dlqMessages(fifo)).toHaveLength(0)
  })

  it('a late Segment retry of an event received before the deletion is erased', async () => {
    await enqueueEvents(fifo, [deletionOf('u-late')])
    await deliverAll(fifo)
    const late = identify({
      userId: 'u-late',
      receivedAt: receivedBefore(600),
      traits: { email: 'l@example.com' },
    })
    const lateTrack = track({ userId: 'u-late', receivedAt: receivedBefore(599) })

    await enqueueEvents(fifo, [late, lateTrack])
    const outcomes = await deliverAll(fifo)

    expect(outcomes).toEqual(['done', 'done'])
    expect(inbound(fifo, late.messageId)).toHaveLength(0)
    expect(inbound(fifo, lateTrack.messageId)).toHaveLength(0)
    expect(fifo.sandbox.state.profiles.has('u-late')).toBe(false)
    expect(dlqMessages(fifo)).toHaveLength(0)
  })

  it('a person who comes back after the deletion is delivered as usual', async () => {
    await enqueueEvents(fifo, [deletionOf('u-back')])
    await deliverAll(fifo)
    const back = identify({
      userId: 'u-back',
      receivedAt: receivedAfter(1),
      traits: { email: 'b@example.com' },
    })

    await enqueueEvents(fifo, [back])
    await deliverAll(fifo)

    expect(inbound(fifo, back.messageId)).toHaveLength(1)
    expect(fifo.sandbox.state.profiles.get('u-back')).toMatchObject({ email: 'b@example.com' })
  })

  it('on a standard queue, a deletion that overtakes an earlier event being retried: the event is erased when it comes back', async () => {
    // Prepare: the identify meets a 503 and waits for its retry; the deletion comes and is carried out.
    const earlier = identify({
      userId: 'u-overtake',
      receivedAt: receivedBefore(5),
      traits: { email: 'o@example.com' },
    })
    standard.sandbox.setFaults({ failNext: [{ method: 'POST', path: '/inbound/segment', status: 503 }] })
    await enqueueEvents(standard, [earlier])
    const first = await receiveRecords(standard)
    await invokeDeliver(standard.deliver(), first, standard)
    await enqueueEvents(standard, [deletionOf('u-overtake')])
    expect(await deliverAll(standard)).toEqual(['done'])

    // Act: the identify's retry comes due.
    await skipWait(standard, first[0] as SQSRecord)
    const outcomes = await deliverAll(standard)

    // Assess
    expect(outcomes).toEqual(['done'])
    expect(inbound(standard, earlier.messageId)).toHaveLength(1) // the 503 only
    expect(standard.sandbox.state.profiles.has('u-overtake')).toBe(false)
  })
})

describe('a deletion is carried out once', () => {
  it('a repeat of the same notification (the same derived messageId) does not wipe the person who came back since', async () => {
    // Prepare: deleted, then back.
    await enqueueEvents(standard, [deletionOf('u-repeat')])
    await deliverAll(standard)
    await enqueueEvents(standard, [
      identify({ userId: 'u-repeat', receivedAt: receivedAfter(60), traits: { email: 'n@example.com' } }),
    ])
    await deliverAll(standard)
    const deletesBefore = standard.sandbox.received.filter((r) => r.method === 'DELETE').length

    // Act: the old deletion again (a redrive, a Segment retry).
    await enqueueEvents(standard, [deletionOf('u-repeat')])
    const outcomes = await deliverAll(standard)

    // Assess: done at once, no Courier call, the profile of the person who came back is kept.
    expect(outcomes).toEqual(['done'])
    expect(deletesBefore).toBe(3)
    expect(standard.sandbox.received.filter((r) => r.method === 'DELETE')).toHaveLength(3)
    expect(standard.sandbox.state.profiles.get('u-repeat')).toMatchObject({ email: 'n@example.com' })
  })
})

describe('Engage Journeys steps sync to Courier lists as audiences do', () => {
  const step = { key: 'welcome__send_offer', id: 'js_42', computationClass: 'journey_step' }
  const members = (relay: TestRelay) => [
    ...(relay.sandbox.state.lists.get('welcome__send_offer-js_42')?.subscriptions.keys() ?? []),
  ]

  it('a member who reaches the step is put on the list `{key}-{id}`, and taken off when they leave it', async () => {
    await enqueueEvents(fifo, [
      audienceIdentify({ ...step, userId: 'u-journey', inAudience: true, timestamp: receivedBefore(20) }),
    ])
    await deliverAll(fifo)
    await syncAudienceOnce(fifo)
    const on = members(fifo)

    await enqueueEvents(fifo, [
      audienceIdentify({ ...step, userId: 'u-journey', inAudience: false, timestamp: receivedBefore(10) }),
    ])
    await deliverAll(fifo)
    await syncAudienceOnce(fifo)

    expect(on).toEqual(['u-journey'])
    expect(members(fifo)).toEqual([])
  })
})
