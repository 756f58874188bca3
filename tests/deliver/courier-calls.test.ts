import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { identify, track } from '../support/fixtures.ts'
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
  relay = await startTestRelay({ COURIER_BASE_URL: courier.url })
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
