import type { SQSRecord } from 'aws-lambda'
import { describe, expect, it } from 'vitest'
import { EXCEPTION_RECEIVES } from '../../lib/queue/expiry.ts'
import { deletion, identify, track } from '../support/fixtures.ts'
import {
  dlqMessages,
  enqueueEvents,
  invokeDeliver,
  queuedMessages,
  receiveRecords,
  skipWait,
  type TestRelay,
  useTestRelay,
} from '../support/relay.ts'

/**
 * One record never fails its neighbours: an exception while delivering one record (here a userId
 * holding a lone surrogate, which makes encodeURIComponent throw URIError) is that record's
 * failure alone, and an exception that recurs is dead-lettered with its reason after a few
 * receives, not retried until maxReceiveCount.
 * https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/encodeURIComponent#exceptions
 */

let relay: TestRelay
useTestRelay((started) => {
  relay = started
})

const LONE_SURROGATE = '\ud800'

describe('an exception while delivering one record', () => {
  it('fails that record alone; after a few receives it is in the DLQ with its reason, and the user’s later event follows', async () => {
    // Prepare: the malformed person's deletion, then their track; other users before and after
    const bad = deletion({ userId: LONE_SURROGATE })
    const behind = track({ userId: LONE_SURROGATE })
    const others = [identify({ userId: 'ada' }), track({ userId: 'bob' }), identify({ userId: 'cy' })]
    await enqueueEvents(relay, [others[0]!, bad, others[1]!, behind, others[2]!])

    // Act: the first invocation
    const first = await receiveRecords(relay)
    const response = await invokeDeliver(relay.deliver(), first, relay)

    // Assess: everyone else delivered; the bad record and the same user's later one come back
    const idOf = (event: { messageId: string }) =>
      (first.find((r) => JSON.parse(r.body).messageId === event.messageId) as SQSRecord).messageId
    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
      [idOf(bad), idOf(behind)].sort(),
    )
    const inbound = relay.sandbox.delivered().filter((r) => r.path === '/inbound/segment')
    expect(inbound.map((r) => (r.body as { messageId: string }).messageId).sort()).toEqual(
      others.map((e) => e.messageId).sort(),
    )

    // Act: receive again as SQS hands them back, until the bad record is given up on
    const failedOf = (records: SQSRecord[], failures: { itemIdentifier: string }[]) =>
      records.filter((r) => failures.some((f) => f.itemIdentifier === r.messageId))
    let inFlight = failedOf(first, response.batchItemFailures)
    for (let round = 0; round < 10 && dlqMessages(relay).length === 0; round++) {
      for (const record of inFlight) await skipWait(relay, record)
      const records = await receiveRecords(relay)
      inFlight = failedOf(records, (await invokeDeliver(relay.deliver(), records, relay)).batchItemFailures)
    }

    // Assess: dead-lettered on its EXCEPTION_RECEIVES-th receive, with the error, Courier never called for it
    const [dead] = dlqMessages(relay)
    expect(dlqMessages(relay)).toHaveLength(1)
    expect(dead?.messageAttributes.messageId?.StringValue).toBe(bad.messageId)
    expect(dead?.messageAttributes.reason?.StringValue).toMatch(
      new RegExp(`^failed with an exception on ${EXCEPTION_RECEIVES} receives: .*URIError`),
    )
    expect(relay.sandbox.received.filter((r) => r.messageId === bad.messageId)).toEqual([])

    // Act: the user's later event, no longer behind it
    for (const record of inFlight) await skipWait(relay, record)
    await invokeDeliver(relay.deliver(), await receiveRecords(relay), relay)

    // Assess
    expect(
      relay.sandbox
        .delivered()
        .some((r) => (r.body as { messageId?: string } | undefined)?.messageId === behind.messageId),
    ).toBe(true)
    expect(queuedMessages(relay)).toHaveLength(0)
  })
})
