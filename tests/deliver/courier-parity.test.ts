import { DeleteMessageBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs'
import { describe, expect, it } from 'vitest'
import { createAudienceSyncHandler } from '../../lib/audiences/handler.ts'
import { parseConfig } from '../../lib/config.ts'
import { createPacer, type PacerFor, unpaced } from '../../lib/courier/pacer.ts'
import { createLambdaContext } from '../../lib/local/lambda-context.ts'
import { recordsToDelete, toSqsRecord } from '../../lib/local/sqs-poller.ts'
import { createLogger } from '../../lib/telemetry.ts'
import { audienceIdentify, audienceTrack, deletion, group, identify } from '../support/fixtures.ts'
import {
  enqueueEvents,
  invokeDeliver,
  receiveRecords,
  SANDBOX_TOKEN,
  skipWait,
  type TestRelay,
  useTestRelay,
} from '../support/relay.ts'

/**
 * Courier as it really is, through the Courier sandbox (which keeps state as Courier does: PUT
 * /tenants replaces, list writes are limited to 20 a minute): what a person would find in Courier
 * after the relay delivered.
 */

let relay: TestRelay
useTestRelay((started) => {
  relay = started
})

const LIST = 'order_completed_last_30days-aud_1'
const fastLists: PacerFor = (endpoint) => (endpoint === 'lists' ? createPacer(50) : unpaced)

/** What the sandbox says through its API, as a person or the relay would read it. */
const courier = async (method: string, path: string, body?: unknown) => {
  const response = await fetch(`${relay.sandbox.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${SANDBOX_TOKEN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await response.text()
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text) }
}

const deliverAll = async (env: Record<string, string> = {}) => {
  const handler = relay.deliver({ config: parseConfig({ ...relay.env, ...env }) })
  for (let records = await receiveRecords(relay); records.length > 0; records = await receiveRecords(relay)) {
    await invokeDeliver(handler, records, relay)
  }
}

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

const members = () => [...(relay.sandbox.state.lists.get(LIST)?.subscriptions.keys() ?? [])].sort()

describe('through the Courier sandbox', () => {
  it('an audience entered by identify and left by track: the trait on the profile, the member on and off the list', async () => {
    // Act: enter
    await enqueueEvents(relay, [audienceIdentify({ inAudience: true, userId: 'u-1' })])
    await deliverAll()
    await syncAll()
    const afterEnter = members()

    // Act: leave
    await enqueueEvents(relay, [
      audienceTrack({ inAudience: false, userId: 'u-1', timestamp: '2026-11-28T12:05:00.000Z' }),
    ])
    await deliverAll()
    await syncAll()

    // Assess
    expect(afterEnter).toEqual(['u-1'])
    expect(members()).toEqual([])
    expect((await courier('GET', '/profiles/u-1')).body).toMatchObject({
      profile: expect.objectContaining({ order_completed_last_30days: true }),
    })
  })

  it('a group call keeps the brand, parent and properties of an existing tenant', async () => {
    // Prepare: a tenant set up in Courier by someone else
    await courier('PUT', '/tenants/acme', {
      name: 'Acme',
      brand_id: 'brand-1',
      parent_tenant_id: 'holding',
      properties: { plan: 'free', region: 'eu' },
    })

    // Act
    await enqueueEvents(relay, [group({ groupId: 'acme', userId: 'u-7', traits: { plan: 'pro' } })])
    await deliverAll({ COURIER_GROUP_TENANTS: 'true' })

    // Assess
    expect((await courier('GET', '/tenants/acme')).body).toMatchObject({
      name: 'Acme',
      brand_id: 'brand-1',
      parent_tenant_id: 'holding',
      properties: { plan: 'pro', region: 'eu' },
    })
    expect(relay.sandbox.state.memberships.get('u-7')?.has('acme')).toBe(true)
  })

  it('a 409 on the tenant write is retried and lands', async () => {
    relay.sandbox.setFaults({ failNext: [{ method: 'PUT', path: '/tenants/acme', status: 409 }] })
    await enqueueEvents(relay, [group({ groupId: 'acme', userId: 'u-7', traits: { plan: 'pro' } })])
    const handler = relay.deliver({ config: parseConfig({ ...relay.env, COURIER_GROUP_TENANTS: 'true' }) })

    const [record] = await receiveRecords(relay)
    const first = await invokeDeliver(handler, [record!], relay)
    await skipWait(relay, record!)
    const second = await invokeDeliver(handler, await receiveRecords(relay), relay)

    expect(first.batchItemFailures).toHaveLength(1)
    expect(second.batchItemFailures).toEqual([])
    expect(relay.sandbox.state.tenants.get('acme')).toMatchObject({ properties: { plan: 'pro' } })
  })

  it('a deletion removes the profile, the list subscriptions and the tenant memberships', async () => {
    // Prepare
    await enqueueEvents(relay, [identify({ userId: 'u-1' }), group({ groupId: 'acme', userId: 'u-1' })])
    await deliverAll({ COURIER_GROUP_TENANTS: 'true' })
    await courier('POST', `/lists/${LIST}/subscriptions`, { recipients: [{ recipientId: 'u-1' }] })

    // Act
    await enqueueEvents(relay, [deletion({ userId: 'u-1' })])
    await deliverAll()

    // Assess
    expect(relay.sandbox.state.profiles.has('u-1')).toBe(false)
    expect(members()).toEqual([])
    expect([...(relay.sandbox.state.memberships.get('u-1')?.keys() ?? [])]).toEqual([])
  })
})
