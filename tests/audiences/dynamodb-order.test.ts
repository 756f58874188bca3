import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compareMessageIds, isLater } from '../../lib/courier/audience.ts'
import { syncAudienceOnce } from '../support/audience-sync.ts'
import { type DynamoDbLocal, startDynamoDbLocal } from '../support/dynamodb-local.ts'
import { audienceIdentify } from '../support/fixtures.ts'
import {
  enqueueEvents,
  invokeDeliver,
  receiveRecords,
  startTestRelay,
  type TestRelay,
} from '../support/relay.ts'

/**
 * The membership ledger and the deletion marks against Amazon's DynamoDB Local, which compares
 * strings as DynamoDB does (UTF-8 bytes): the ids whose order JavaScript's `<` gets the other way
 * round (a character outside the Basic Multilingual Plane against one from U+E000–U+FFFF).
 */

let dynamodb: DynamoDbLocal
beforeAll(async () => {
  dynamodb = await startDynamoDbLocal()
}, 240_000)
afterAll(() => dynamodb?.stop())

const ASTRAL = 'msg-\u{1F600}' // UTF-16 D83D DE00 · UTF-8 F0 9F 98 80
const BMP = 'msg-\uFF5E' // UTF-16 FF5E · UTF-8 EF BD 9E
const AT = Date.parse('2026-12-01T10:00:00.000Z')

describe('a tie at the same millisecond, broken the same way before the write and in it', () => {
  it.each([
    ['the astral id recorded first', [ASTRAL, BMP]],
    ['the BMP id recorded first', [BMP, ASTRAL]],
  ])(
    '%s: the ledger keeps the id that is greater in UTF-8 bytes, and isLater agrees',
    async (_name, order) => {
      // Prepare
      const ledger = dynamodb.ledger()
      const list = `tie-${order[0] === ASTRAL ? 'a' : 'b'}`
      const winner = compareMessageIds(ASTRAL, BMP) > 0 ? ASTRAL : BMP

      // Act: each change recorded only over an older one (the conditional write in DynamoDB).
      for (const messageId of order) {
        await ledger.recordApplied(
          list,
          [{ member: 'user-1', at: AT, subscribed: messageId === ASTRAL, messageId }],
          Date.now() + 60_000,
        )
      }
      const kept = (await ledger.lastApplied(list, ['user-1'])).get('user-1')

      // Assess: DynamoDB kept the byte-order winner, JavaScript's `<` would have picked the other,
      // and the decision made before writing (isLater) picks what DynamoDB keeps.
      expect(winner).toBe(ASTRAL)
      expect(ASTRAL < BMP).toBe(true)
      expect(kept?.messageId).toBe(winner)
      const loser = winner === ASTRAL ? BMP : ASTRAL
      expect(isLater({ at: AT, messageId: loser }, kept)).toBe(false)
      expect(isLater({ at: AT, messageId: winner }, kept)).toBe(true)
    },
  )

  it('a deletion mark moves forward in the same order: the byte-order later deletion stands', async () => {
    const marks = dynamodb.deletionMarks()

    const first = await marks.mark('user-2', { at: AT, messageId: ASTRAL })
    const second = await marks.mark('user-2', { at: AT, messageId: BMP })
    const kept = (await marks.read(['user-2'])).get('user-2')

    expect([first, second]).toEqual([true, false])
    expect(kept).toEqual({ at: AT, messageId: ASTRAL, done: false })
  })
})

describe('the list sync on the relay, its ledger on DynamoDB Local', () => {
  let relay: TestRelay
  beforeAll(async () => {
    relay = await startTestRelay()
  })
  afterAll(() => relay?.stop())

  const LIST_KEY = 'vip_customers'
  /** Delivers what is queued, then one list sync invocation over what deliver handed over. */
  const deliverAndSync = async () => {
    const deliver = relay.deliver()
    for (
      let records = await receiveRecords(relay);
      records.length > 0;
      records = await receiveRecords(relay)
    ) {
      await invokeDeliver(deliver, records, relay)
    }
    await syncAudienceOnce(relay, dynamodb.ledger())
  }

  it('an enter (astral messageId) and an exit (BMP messageId) at the same millisecond: the member ends where DynamoDB’s order says, whichever came first', async () => {
    // Prepare: by UTF-8 bytes the astral id is the later one, so the enter wins the tie; by
    // JavaScript's `<` the exit would, and the exit applied second would take the member off the
    // list while the ledger kept the enter.
    const at = '2026-12-01T10:00:00.000Z'
    const enter = audienceIdentify(
      { key: LIST_KEY, id: 'a1', userId: 'u-astral', inAudience: true, timestamp: at },
      { messageId: ASTRAL },
    )
    const exit = audienceIdentify(
      { key: LIST_KEY, id: 'a1', userId: 'u-astral', inAudience: false, timestamp: at },
      { messageId: BMP },
    )

    // Act: the enter first, then the exit in a later batch.
    await enqueueEvents(relay, [enter])
    await deliverAndSync()
    await enqueueEvents(relay, [exit])
    await deliverAndSync()

    // Assess
    const members = [...(relay.sandbox.state.lists.get(`${LIST_KEY}-a1`)?.subscriptions.keys() ?? [])]
    expect(members).toEqual(['u-astral'])
  })
})
