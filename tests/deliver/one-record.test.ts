import type { SQSRecord } from 'aws-lambda'
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../lib/config.ts'
import type { CourierClient } from '../../lib/courier/client.ts'
import { courierFrom } from '../../lib/courier/from-config.ts'
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
 * One record never fails its neighbours: an exception while delivering one record (here a bug
 * planted in the Courier client for one person's deletion) is that record's failure alone, and an
 * exception that recurs is dead-lettered with its reason after a few receives, not retried until
 * maxReceiveCount. (A lone-surrogate id, which once made encodeURIComponent throw, is now refused
 * as an invalid event before any call: tests/security/one-reading.test.ts.)
 */

let relay: TestRelay
useTestRelay((started) => {
  relay = started
})

const BUGGY = 'buggy-person'

/** The relay's own Courier client, but deleting BUGGY throws as a bug in our code would. */
const buggyFor = (relay: TestRelay): CourierClient => {
  const real = courierFrom(parseConfig(relay.env))
  return {
    send: (request, options) => {
      if (request.method === 'DELETE' && request.path.includes(BUGGY)) throw new TypeError(`planted bug`)
      return real.send(request, options)
    },
  }
}

describe('an exception while delivering one record', () => {
  it('fails that record alone; after a few receives it is in the DLQ with its reason, and the user’s later event follows', async () => {
    // Prepare: the malformed person's deletion, then their track; other users before and after
    const bad = deletion({ userId: BUGGY })
    const behind = track({ userId: BUGGY })
    const others = [identify({ userId: 'ada' }), track({ userId: 'bob' }), identify({ userId: 'cy' })]
    await enqueueEvents(relay, [others[0]!, bad, others[1]!, behind, others[2]!])

    // Act: the first invocation
    const deliver = relay.deliver({ courier: buggyFor(relay) })
    const first = await receiveRecords(relay)
    const response = await invokeDeliver(deliver, first, relay)

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
      inFlight = failedOf(records, (await invokeDeliver(deliver, records, relay)).batchItemFailures)
    }

    // Assess: dead-lettered on its EXCEPTION_RECEIVES-th receive, with the error; Courier never got it
    const [dead] = dlqMessages(relay)
    expect(dlqMessages(relay)).toHaveLength(1)
    expect(dead?.messageAttributes.messageId?.StringValue).toBe(bad.messageId)
    expect(dead?.messageAttributes.reason?.StringValue).toMatch(
      new RegExp(`^failed with an exception on ${EXCEPTION_RECEIVES} receives: .*TypeError`),
    )
    expect(relay.sandbox.received.filter((r) => r.messageId === bad.messageId)).toEqual([])

    // Act: the user's later event, no longer behind it
    for (const record of inFlight) await skipWait(relay, record)
    await invokeDeliver(deliver, await receiveRecords(relay), relay)

    // Assess
    expect(
      relay.sandbox
        .delivered()
        .some((r) => (r.body as { messageId?: string } | undefined)?.messageId === behind.messageId),
    ).toBe(true)
    expect(queuedMessages(relay)).toHaveLength(0)
  })
})
