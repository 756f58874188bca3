import { DeleteItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb'
import { beforeEach, describe, expect, it } from 'vitest'
import { createDynamoDbClient } from '../../lib/audiences/membership-ledger.ts'
import { ENDPOINT_CLASSES } from '../../lib/courier/endpoint-class.ts'
import type { Clock } from '../../lib/courier/pacer.ts'
import { CUBIC_DEFAULTS } from '../../lib/courier/rate-control.ts'
import {
  createLearntRates,
  LEARNT_RATE_TTL_SECONDS,
  LEARNT_RATES_KEY,
  type LearntRates,
} from '../../lib/deliver/learnt-rates.ts'
import { track } from '../support/fixtures.ts'
import {
  enqueueEvents,
  invokeDeliver,
  receiveRecords,
  type TestRelay,
  useTestRelay,
} from '../support/relay.ts'

/**
 * The fleet's learnt Courier rate, shared through the embedded DynamoDB (dynalite) as the deployed
 * fleet shares it through the membership table; pacing observed on a simulated clock that counts
 * its waits, so nothing depends on the machine's speed.
 */

let relay: TestRelay
useTestRelay((started) => {
  relay = started
})

const client = () =>
  createDynamoDbClient({
    endpoint: relay.dynamodb.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  })
beforeEach(async () => {
  for (const endpointClass of ENDPOINT_CLASSES) {
    await client().send(
      new DeleteItemCommand({
        TableName: relay.dynamodb.tableName,
        Key: { list: { S: LEARNT_RATES_KEY }, member: { S: endpointClass } },
      }),
    )
  }
})

const storeAt = (now: () => number = Date.now): LearntRates =>
  createLearntRates(client(), relay.dynamodb.tableName, now)

/** A clock that never really waits and counts the waits asked of it. */
const countingClock = (): Clock & { waits: number[] } => {
  let time = Date.now()
  const waits: number[] = []
  return {
    waits,
    now: () => time,
    sleep: (ms) => {
      waits.push(ms)
      time += ms
      return new Promise((resolve) => setImmediate(resolve))
    },
  }
}

/** Ten users' events, delivered by one fresh deliver instance on `clock`. */
const deliverTenUsers = async (clock: Clock) => {
  await enqueueEvents(
    relay,
    Array.from({ length: 10 }, (_, i) => track({ userId: `user-${i}-${Math.random()}` })),
  )
  return invokeDeliver(relay.deliver({ clock }), await receiveRecords(relay), relay)
}

describe('the learnt rates in DynamoDB', () => {
  it('reads back what an instance wrote, per endpoint class', async () => {
    const store = storeAt()

    await store.write('inbound', 12.5)
    await store.write('tenants', 3)

    expect(await store.read()).toEqual(
      new Map([
        ['inbound', 12.5],
        ['tenants', 3],
      ]),
    )
  })

  it('forgets a class’s rate when an instance says it went stale, keeping the others', async () => {
    const store = storeAt()
    await store.write('inbound', 12.5)
    await store.write('tenants', 3)

    await store.write('inbound', undefined)

    expect(await store.read()).toEqual(new Map([['tenants', 3]]))
  })

  it('forgets a rate nobody confirmed for an hour, and ignores what it did not write', async () => {
    // Prepare: a rate written now, read two hours later; an item of an unknown class
    await storeAt().write('inbound', 12.5)
    await client().send(
      new PutItemCommand({
        TableName: relay.dynamodb.tableName,
        Item: {
          list: { S: LEARNT_RATES_KEY },
          member: { S: 'profiles' },
          rps: { S: 'fast' },
          at: { N: String(Date.now()) },
        },
      }),
    )

    // Act
    const later = await storeAt(() => Date.now() + 2 * LEARNT_RATE_TTL_SECONDS * 1_000).read()
    const now = await storeAt().read()

    // Assess
    expect(later).toEqual(new Map())
    expect(now.has('profiles')).toBe(false)
  })
})

describe('a cold deliver instance and the fleet’s learnt rate', () => {
  it('sends its first batch without any wait when the fleet learnt no limit', async () => {
    // Prepare: nothing shared yet
    const clock = countingClock()

    // Act
    const response = await deliverTenUsers(clock)

    // Assess: all delivered, the pacer never waited
    expect(response.batchItemFailures).toEqual([])
    expect(relay.sandbox.delivered()).toHaveLength(10)
    expect(clock.waits).toEqual([])
  })

  it('starts paced near the rate the fleet learnt, instead of sending its batch in one burst', async () => {
    // Prepare: the fleet learnt 4 requests/s per instance
    await storeAt().write('inbound', 4)
    const clock = countingClock()

    // Act
    const response = await deliverTenUsers(clock)

    // Assess: every call after the first two waited about one interval of a rate near 4/s
    expect(response.batchItemFailures).toEqual([])
    expect(relay.sandbox.delivered()).toHaveLength(10)
    expect(clock.waits.length).toBeGreaterThanOrEqual(8)
    const interval = clock.waits.reduce((sum, ms) => sum + ms, 0) / clock.waits.length
    expect(interval).toBeGreaterThan(1_000 / (4 * 1.1))
    expect(interval).toBeLessThan(1_000 / (4 * CUBIC_DEFAULTS.decrease))
  })

  it('reads the fleet’s rate while it is made (Lambda’s init), not on its first event', async () => {
    // Prepare: the fleet learnt 4 requests/s; an instance is made and its init ends
    await storeAt().write('inbound', 4)
    const clock = countingClock()
    const handler = relay.deliver({ clock })
    await handler.ready
    // …then the shared rate goes away before the first event arrives
    await client().send(
      new DeleteItemCommand({
        TableName: relay.dynamodb.tableName,
        Key: { list: { S: LEARNT_RATES_KEY }, member: { S: 'inbound' } },
      }),
    )
    await enqueueEvents(
      relay,
      Array.from({ length: 10 }, (_, i) => track({ userId: `init-${i}-${Math.random()}` })),
    )

    // Act
    const response = await invokeDeliver(handler, await receiveRecords(relay), relay)

    // Assess: paced at the rate read at init (a read at the first event would have found none)
    expect(response.batchItemFailures).toEqual([])
    expect(relay.sandbox.delivered()).toHaveLength(10)
    expect(clock.waits.length).toBeGreaterThanOrEqual(8)
  })

  it('delivers as if nothing were shared when DynamoDB cannot be reached', async () => {
    // Prepare: a table behind a port nothing listens on (connection refused)
    const unreachable = createLearntRates(
      createDynamoDbClient(
        {
          endpoint: 'http://127.0.0.1:1',
          region: 'us-east-1',
          credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
        },
        { maxAttempts: 1, connectionTimeoutMs: 500, requestTimeoutMs: 500 },
      ),
      relay.dynamodb.tableName,
    )
    await enqueueEvents(relay, [track(), track({ userId: 'someone-else' })])
    const clock = countingClock()

    // Act
    const handler = relay.deliver({ clock, learntRates: unreachable })
    const init = await handler.ready.then(
      () => 'ended',
      () => 'rejected',
    )
    const response = await invokeDeliver(handler, await receiveRecords(relay), relay)

    // Assess: the init ended without throwing; delivered, unpaced
    expect(init).toBe('ended')
    expect(response.batchItemFailures).toEqual([])
    expect(relay.sandbox.delivered()).toHaveLength(2)
    expect(clock.waits).toEqual([])
  })

  it('shares the limit it learns from Courier’s first 429, for the next cold instance', async () => {
    // Prepare: Courier refuses every request
    relay.sandbox.setFaults({ rateLimitShare: 1, retryAfter: 'none' })

    // Act: a cold instance meets the 429s
    await deliverTenUsers(countingClock())

    // Assess: the rate it engaged at is in the table
    const shared = await storeAt().read()
    expect(shared.get('inbound')).toBeGreaterThan(0)
    expect(shared.has('lists')).toBe(false)
  })
})
