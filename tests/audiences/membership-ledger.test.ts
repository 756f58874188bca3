import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MembershipLedger } from '../../lib/audiences/membership-ledger.ts'
import { type LocalDynamoDb, startLocalDynamoDb } from '../../lib/local/dynamodb.ts'

/**
 * The list sync's membership ledger (lib/audiences/membership-ledger.ts) against the embedded
 * DynamoDB, which refuses what DynamoDB refuses (key sizes, reserved words, batch limits).
 */

let dynamodb: LocalDynamoDb
let list = 0

beforeAll(async () => {
  // Generous bounds: an embedded DynamoDB on a busy machine is slower than the deployed one.
  dynamodb = await startLocalDynamoDb({
    timeouts: { maxAttempts: 3, connectionTimeoutMs: 5_000, requestTimeoutMs: 10_000 },
  })
})
afterAll(() => dynamodb.stop())

/** One instance's ledger: its own client, as each Lambda instance has. */
const instance = (): MembershipLedger => dynamodb.ledger()

/** A recording deadline that is never reached in a test. */
const soon = () => Date.now() + 60_000

/** A list id no other test uses. */
const freshList = () => `audience_${++list}-aud_ledger`

describe('the list lease', () => {
  it('lets one instance write a list at a time: the second waits for the first to finish', async () => {
    // Prepare
    const listId = freshList()
    const order: string[] = []
    let finishFirst = () => {}
    const lease = () => ({ waitUntil: Date.now() + 5_000, holdUntil: Date.now() + 60_000 })

    // Act
    const first = instance().withList(listId, lease(), async () => {
      order.push('first starts')
      await new Promise<void>((resolve) => {
        finishFirst = resolve
      })
      order.push('first ends')
    })
    await new Promise((resolve) => setTimeout(resolve, 100))
    const second = instance().withList(listId, lease(), async () => {
      order.push('second starts')
    })
    await new Promise((resolve) => setTimeout(resolve, 300))
    finishFirst()
    const results = await Promise.all([first, second])

    // Assess
    expect(results.map((r) => r.acquired)).toEqual([true, true])
    expect(order).toEqual(['first starts', 'first ends', 'second starts'])
  })

  it('gives up waiting at waitUntil without running the work', async () => {
    const listId = freshList()
    let release = () => {}
    const holder = instance().withList(
      listId,
      { waitUntil: Date.now() + 1_000, holdUntil: Date.now() + 60_000 },
      () =>
        new Promise<void>((resolve) => {
          release = resolve
        }),
    )
    let ran = false

    const result = await instance().withList(
      listId,
      { waitUntil: Date.now() + 300, holdUntil: Date.now() + 60_000 },
      async () => {
        ran = true
      },
    )
    release()
    await holder

    expect(result).toEqual({ acquired: false })
    expect(ran).toBe(false)
  })

  it('takes over a lease whose holder died (its invocation ended) without releasing it', async () => {
    // Prepare: a holder whose lease lapsed 1 ms after it was taken, and who never released it
    const listId = freshList()
    let release = () => {}
    const dead = instance().withList(
      listId,
      { waitUntil: Date.now() + 1_000, holdUntil: Date.now() + 1 },
      () =>
        new Promise<void>((resolve) => {
          release = resolve
        }),
    )
    await new Promise((resolve) => setTimeout(resolve, 50))

    // Act
    const result = await instance().withList(
      listId,
      { waitUntil: Date.now() + 1_000, holdUntil: Date.now() + 60_000 },
      async () => 'written',
    )
    release()
    await dead

    // Assess
    expect(result).toEqual({ acquired: true, value: 'written' })
  })

  it('is released when the work throws, so the list is not blocked until the invocation ends', async () => {
    const listId = freshList()
    const lease = () => ({ waitUntil: Date.now() + 200, holdUntil: Date.now() + 60_000 })

    await expect(
      instance().withList(listId, lease(), async () => {
        throw new Error('Courier call failed')
      }),
    ).rejects.toThrow('Courier call failed')
    const next = await instance().withList(listId, lease(), async () => 'next')

    expect(next).toEqual({ acquired: true, value: 'next' })
  })
})

describe('the members’ latest applied times', () => {
  it('reads back what another instance recorded, for more members than one call takes (100 reads, 25 writes)', async () => {
    // Prepare: 1,000 members (40 BatchWriteItem and 10 BatchGetItem calls)
    const listId = freshList()
    const members = Array.from({ length: 1_000 }, (_, i) => `member-${i}`)
    await instance().recordApplied(
      listId,
      members.map((member, i) => ({ member, at: 1_000 + i, subscribed: true, messageId: `m-${i}` })),
      soon(),
    )

    // Act
    const applied = await instance().lastApplied(listId, [...members, 'never-seen'])

    // Assess
    expect(applied.size).toBe(1_000)
    expect(applied.get('member-0')).toEqual({ at: 1_000, messageId: 'm-0' })
    expect(applied.get('member-999')).toEqual({ at: 1_999, messageId: 'm-999' })
    expect(applied.has('never-seen')).toBe(false)
  })

  it('keeps the latest of one member’s changes recorded in one call', async () => {
    const listId = freshList()

    await instance().recordApplied(
      listId,
      [
        { member: 'u-1', at: 5, subscribed: false, messageId: 'exit' },
        { member: 'u-1', at: 3, subscribed: true, messageId: 'enter' },
      ],
      soon(),
    )

    expect((await instance().lastApplied(listId, ['u-1'])).get('u-1')?.at).toBe(5)
  })

  it('never moves a member’s time backwards: an older change recorded late leaves the newer one', async () => {
    // Prepare: the exit at t=9,000 is recorded; then an instance whose lease lapsed mid-write, or a
    // late retry, records the older enter at t=2,000
    const listId = freshList()
    await instance().recordApplied(
      listId,
      [{ member: 'u-1', at: 9_000, subscribed: false, messageId: 'exit' }],
      soon(),
    )

    // Act
    await instance().recordApplied(
      listId,
      [{ member: 'u-1', at: 2_000, subscribed: true, messageId: 'enter' }],
      soon(),
    )

    // Assess
    expect((await instance().lastApplied(listId, ['u-1'])).get('u-1')).toEqual({
      at: 9_000,
      messageId: 'exit',
    })
  })

  it('breaks a tie by messageId, the same way whichever instance records first', async () => {
    const [one, two] = [freshList(), freshList()]
    const a = { member: 'u-1', at: 5, subscribed: true, messageId: 'a' }
    const b = { member: 'u-1', at: 5, subscribed: false, messageId: 'b' }

    await instance().recordApplied(one, [a], soon())
    await instance().recordApplied(one, [b], soon())
    await instance().recordApplied(two, [b], soon())
    await instance().recordApplied(two, [a], soon())

    expect((await instance().lastApplied(one, ['u-1'])).get('u-1')?.messageId).toBe('b')
    expect((await instance().lastApplied(two, ['u-1'])).get('u-1')?.messageId).toBe('b')
  })

  it('starts no write after its deadline and says how many it left unrecorded', async () => {
    const listId = freshList()

    await expect(
      instance().recordApplied(
        listId,
        [{ member: 'u-1', at: 1, subscribed: true, messageId: 'm' }],
        Date.now() - 1,
      ),
    ).rejects.toThrow('1 applied changes not recorded before the deadline')
    expect((await instance().lastApplied(listId, ['u-1'])).size).toBe(0)
  })

  it('stores ids longer than DynamoDB’s key limits (1,024 bytes for the member) apart from each other', async () => {
    // Prepare: two ids past the sort key's limit that differ only at the end
    const listId = freshList()
    const long = 'é'.repeat(600)
    const [a, b] = [`${long}a`, `${long}b`]

    // Act
    await instance().recordApplied(
      listId,
      [
        { member: a, at: 1, subscribed: true, messageId: 'a' },
        { member: b, at: 2, subscribed: true, messageId: 'b' },
      ],
      soon(),
    )
    const applied = await instance().lastApplied(listId, [a, b])

    // Assess
    expect([applied.get(a)?.at, applied.get(b)?.at]).toEqual([1, 2])
  })
})
