import { DeleteMessageBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs'
import fc from 'fast-check'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createAudienceSyncHandler } from '../../lib/audiences/handler.ts'
import { parseConfig } from '../../lib/config.ts'
import { createPacer, type PacerFor, unpaced } from '../../lib/courier/pacer.ts'
import { pathSegment } from '../../lib/courier/routing.ts'
import { createLambdaContext } from '../../lib/local/lambda-context.ts'
import { type LocalServer, startLocalServer } from '../../lib/local/server.ts'
import { recordsToDelete, toSqsRecord } from '../../lib/local/sqs-poller.ts'
import { createLogger } from '../../lib/telemetry.ts'
import { audienceIdentify, identify } from '../support/fixtures.ts'
import { clearQueues } from '../support/queues.ts'
import {
  dlqMessages,
  enqueueEvents,
  ingestHandlerFor,
  invokeDeliver,
  queuedMessages,
  receiveRecords,
  SANDBOX_TOKEN,
  startTestRelay,
  type TestRelay,
} from '../support/relay.ts'

/**
 * One reading of an event for everyone on its way: no repeated top-level keys (JSON.parse keeps
 * the last, other parsers the first), ids that are well-formed Unicode (a lone surrogate has no
 * UTF-8 form and no percent-encoding), and numeric ids with every digit, from the front door to
 * Courier's list and the deletion. On the running local relay: HTTP front door, embedded SQS,
 * deliver, the list sync and the Courier sandbox.
 */

let relay: TestRelay
let server: LocalServer

beforeAll(async () => {
  relay = await startTestRelay()
  server = await startLocalServer(ingestHandlerFor(relay))
})
afterAll(async () => {
  await server.stop()
  await relay.stop()
})
beforeEach(() => {
  clearQueues(relay.queues)
  relay.sandbox.reset()
})

const post = async (body: string) => {
  const response = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  })
  return {
    status: response.status,
    json: (await response.json()) as { rejected: { error: string }[] },
  }
}

const deliverAll = async () => {
  const handler = relay.deliver()
  for (let records = await receiveRecords(relay); records.length > 0; records = await receiveRecords(relay)) {
    await invokeDeliver(handler, records, relay)
  }
}

const fastLists: PacerFor = (endpoint) => (endpoint === 'lists' ? createPacer(50) : unpaced)

const syncAll = async () => {
  const handler = createAudienceSyncHandler({
    config: parseConfig(relay.env),
    sqs: relay.queues.sqs,
    logger: createLogger('audiences-test'),
    pacerFor: fastLists,
    ledger: relay.ledger(),
  })
  const { Messages = [] } = await relay.queues.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: relay.queues.audienceQueueUrl,
      MaxNumberOfMessages: 10,
      MessageSystemAttributeNames: ['All'],
    }),
  )
  const records = Messages.map((m) => toSqsRecord(m, relay.queues.audienceQueueArn, 'us-east-1'))
  const response = await handler({ Records: records }, createLambdaContext('audiences', 60_000))
  const done = recordsToDelete(records, response)
  if (done.length > 0) {
    await relay.queues.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: relay.queues.audienceQueueUrl,
        Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
      }),
    )
  }
  return response
}

const dlqReasons = () => dlqMessages(relay).map((m) => m.messageAttributes?.reason?.StringValue)

describe('repeated keys', () => {
  const ROUTED = ['type', 'userId', 'anonymousId', 'groupId', 'messageId', 'event', 'traits', 'properties']

  it('rejects an event that repeats any key the relay routes on, spelled plainly or escaped, and keeps it in the DLQ', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTED), fc.boolean(), async (key, escaped) => {
        clearQueues(relay.queues)
        // Prepare: a genuine event with the key added again in front (JSON.parse keeps the last)
        const event = identify({ groupId: 'g-1', event: 'e', properties: {} })
        const spelled = escaped ? `${key[0]}\\u00${key.charCodeAt(1).toString(16)}${key.slice(2)}` : key
        const body = `{"${spelled}":"victim",${JSON.stringify(event).slice(1)}`

        // Act
        const answer = await post(body)

        // Assess
        expect(answer.status).toBe(400)
        expect(answer.json.rejected[0]?.error).toBe(
          `the event repeats the key "${key}"; a JSON object must name each key once, so it has one reading`,
        )
        expect(queuedMessages(relay)).toEqual([])
        expect(dlqMessages(relay).map((m) => m.body)).toEqual([body])
      }),
      { numRuns: 24 },
    )
  })
})

describe('ids that are not well-formed Unicode', () => {
  it('takes an id iff it is well-formed, rejecting the rest with the reason and keeping them; never 5xx (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }),
        fc.constantFrom('userId', 'anonymousId', 'messageId', 'groupId'),
        async (id, field) => {
          clearQueues(relay.queues)
          // JSON.stringify writes a lone surrogate as an escape ("\ud800"), as an attacker would send it.
          const body = JSON.stringify({
            type: 'group',
            messageId: `m-${Math.random()}`,
            anonymousId: 'anon-1',
            groupId: 'g-1',
            traits: {},
            [field]: id,
          })

          const answer = await post(body)

          if (id.isWellFormed()) {
            expect(answer.status).toBe(200)
          } else {
            expect(answer.status).toBe(400)
            expect(answer.json.rejected[0]?.error).toMatch(new RegExp(`^${field} is not well-formed Unicode`))
            expect(dlqMessages(relay)).toHaveLength(1)
          }
        },
      ),
      { numRuns: 80 },
    )
  })

  it('names a lone surrogate in an Engage computation key, which would name the Courier list', async () => {
    const event = audienceIdentify({ inAudience: true, key: 'k\ud800' })

    const answer = await post(JSON.stringify(event))

    expect(answer.status).toBe(400)
    expect(answer.json.rejected[0]?.error).toMatch(/^context\.personas\.computation_key is not well-formed/)
  })

  it('an astral id (a surrogate pair) reaches Courier percent-encoded, deletion included', async () => {
    // Prepare
    const userId = 'user-🦄-𝄞'
    const body = `{"type":"delete","userId":${JSON.stringify(userId)},"timestamp":"2026-11-28T12:00:00.000Z"}`

    // Act
    const answer = await post(body)
    await deliverAll()

    // Assess
    expect(answer.status).toBe(200)
    // (the sandbox records the path decoded)
    expect(relay.sandbox.delivered().map((r) => `${r.method} ${r.path}`)).toEqual([
      `DELETE /profiles/${userId}/lists`,
      `DELETE /users/${userId}/tenants`,
      `DELETE /profiles/${userId}`,
    ])
  })

  it('deliver dead-letters a queued event with a lone surrogate id at once, not retrying it', async () => {
    // Prepare: an event queued before ingest refused such ids
    await enqueueEvents(relay, [
      '{"type":"delete","userId":"\\ud800","timestamp":"2026-11-28T12:00:00.000Z"}',
    ])

    // Act
    const response = await invokeDeliver(relay.deliver(), await receiveRecords(relay), relay)

    // Assess
    expect(response.batchItemFailures).toEqual([])
    expect(queuedMessages(relay)).toEqual([])
    expect(dlqReasons()).toEqual([expect.stringMatching(/userId is not well-formed Unicode/)])
    expect(relay.sandbox.received).toEqual([])
  })

  it('a path segment is never made of an id that has no UTF-8 form, and never throws (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (id) => {
        const segment = pathSegment(id)
        expect(segment === undefined || decodeURIComponent(segment) === id).toBe(true)
        if (!id.isWellFormed()) expect(segment).toBeUndefined()
      }),
    )
  })
})

describe('numeric ids past 2^53', () => {
  const LIST = 'order_completed_last_30days-aud_1'
  const members = () => [...(relay.sandbox.state.lists.get(LIST)?.subscriptions.keys() ?? [])].sort()
  const courier = (method: string, path: string, body?: unknown) =>
    fetch(`${relay.sandbox.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${SANDBOX_TOKEN}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })

  it('keep every digit through the front door, the list sync, the ledger and the deletion, never touching the rounded id', async () => {
    // Prepare: the person the rounded double would name is already on the list
    const exact = '12345678901234567891'
    const rounded = String(Number(exact))
    expect(rounded).not.toBe(exact)
    await courier('PUT', `/lists/${LIST}/subscriptions/${rounded}`)
    const entered = JSON.stringify(
      audienceIdentify({ inAudience: true, userId: 'placeholder', timestamp: '2026-11-28T12:00:00.000Z' }),
    ).replace('"placeholder"', exact)

    // Act: the audience entry
    const enteredAnswer = await post(entered)
    await deliverAll()
    await syncAll()
    const afterEntry = members()

    // Act: the person's deletion
    const deleted = `{"type":"delete","userId":${exact},"timestamp":"2026-11-28T12:05:00.000Z"}`
    const deletedAnswer = await post(deleted)
    await deliverAll()
    await syncAll()

    // Assess
    expect([enteredAnswer.status, deletedAnswer.status]).toEqual([200, 200])
    expect(afterEntry).toEqual([rounded, exact].sort())
    const calls = relay.sandbox.delivered().map((r) => `${r.method} ${r.path}`)
    expect(calls).toEqual(
      expect.arrayContaining([
        `DELETE /profiles/${exact}/lists`,
        `DELETE /users/${exact}/tenants`,
        `DELETE /profiles/${exact}`,
      ]),
    )
    expect(calls.filter((call) => call.includes(rounded) && call.startsWith('DELETE'))).toEqual([])
    expect(members()).toEqual([rounded])
    expect(dlqMessages(relay)).toEqual([])
  })
})
