import { describe, expect, it } from 'vitest'
import {
  audienceChangeOf,
  deletionOf,
  isLater,
  LIST_SUBSCRIBE_MAX_BYTES,
  membershipKey,
  subscribeCalls,
} from '../../lib/courier/audience.ts'
import { type SegmentEvent, validateEvent } from '../../lib/segment/event.ts'
import { audienceIdentify, audienceTrack, group, identify, track } from '../support/fixtures.ts'

const asEvent = (fixture: Record<string, unknown>) => fixture as unknown as SegmentEvent

describe("audienceChangeOf: Engage audiences as Courier's Actions destination maps them to lists", () => {
  it.each([
    ['identify with the trait true', audienceIdentify({ inAudience: true }), true],
    ['identify with the trait false', audienceIdentify({ inAudience: false }), false],
    ['track Audience Entered', audienceTrack({ inAudience: true }), true],
    ['track Audience Exited', audienceTrack({ inAudience: false }), false],
  ])('%s', (_name, event, subscribed) => {
    const change = audienceChangeOf(asEvent(event))

    expect(change).toEqual({
      listId: 'order_completed_last_30days-aud_1',
      recipientId: 'user-1',
      subscribed,
      at: Date.parse('2026-11-28T12:00:00.000Z'),
      messageId: event.messageId,
    })
  })

  it('uses anonymousId when there is no userId, as Courier’s action does', () => {
    const event = audienceIdentify({ inAudience: true }, { userId: undefined, anonymousId: 'anon-7' })

    expect(audienceChangeOf(asEvent(event))?.recipientId).toBe('anon-7')
  })

  it('reads any other value of the trait as Courier’s action does: truthy is in', () => {
    const key = 'vip'
    const values = [1, 'yes', 0, '', null, undefined].map(
      (value) =>
        audienceChangeOf(asEvent(audienceIdentify({ key, inAudience: true }, { traits: { [key]: value } })))
          ?.subscribed,
    )

    expect(values).toEqual([true, true, false, false, false, false])
  })

  it.each([
    ['a plain identify', identify()],
    ['a plain track', track()],
    ['a group', group()],
    [
      'a computed trait, not an audience',
      audienceIdentify(
        { inAudience: true },
        { context: { personas: { computation_class: 'trait', computation_key: 'k', computation_id: 'i' } } },
      ),
    ],
    [
      'an audience without computation_id',
      audienceIdentify(
        { inAudience: true },
        { context: { personas: { computation_class: 'audience', computation_key: 'k' } } },
      ),
    ],
  ])('is not an audience change: %s', (_name, event) => {
    expect(audienceChangeOf(asEvent(event))).toBeUndefined()
  })

  it('orders changes of one member by the Segment event time, the last seen winning a tie', () => {
    const early = audienceChangeOf(
      asEvent(audienceIdentify({ inAudience: true, timestamp: '2026-11-28T12:00:00Z' })),
    )!
    const late = audienceChangeOf(
      asEvent(audienceIdentify({ inAudience: false, timestamp: '2026-11-28T12:00:05Z' })),
    )!

    expect(isLater(late, early)).toBe(true)
    expect(isLater(early, late)).toBe(false)
    expect(isLater(early, { ...early })).toBe(true)
    // A tie is broken by messageId, the same way in every instance whatever the arrival order.
    expect(isLater({ at: 1, messageId: 'b' }, { at: 1, messageId: 'a' })).toBe(true)
    expect(isLater({ at: 1, messageId: 'a' }, { at: 1, messageId: 'b' })).toBe(false)
    expect(membershipKey(early)).toBe(membershipKey(late))
  })
})

describe('numeric ids past 2^53: the member and the deleted person keep every digit', () => {
  it('reads them from the queued text through validateEvent, not from the rounded double', () => {
    // Prepare: the texts deliver and the list sync read from the queue
    const exact = '12345678901234567891'
    const entered = JSON.stringify(audienceIdentify({ inAudience: true, userId: 'x' })).replace('"x"', exact)
    const deleted = `{"type":"delete","userId":${exact},"timestamp":"2026-11-28T12:00:00.000Z"}`

    // Act
    const [enteredRead, deletedRead] = [entered, deleted].map((text) => validateEvent(JSON.parse(text), text))
    if (!enteredRead?.ok || !deletedRead?.ok) throw new Error('fixtures must be valid')
    const change = audienceChangeOf(enteredRead.event, enteredRead.ids)
    const deletion = deletionOf(deletedRead.event, deletedRead.ids)

    // Assess: and without the ids, the parsed double would name someone else
    expect(change?.recipientId).toBe(exact)
    expect(deletion?.recipientId).toBe(exact)
    expect(audienceChangeOf(enteredRead.event)?.recipientId).not.toBe(exact)
  })
})

describe('subscribeCalls: members in bulk list writes', () => {
  it('puts 2,500 short ids in calls of 1,000, 1,000 and 500, in order', () => {
    const ids = Array.from({ length: 2_500 }, (_, i) => `member-${i}`)

    const calls = subscribeCalls(ids, (id) => id)

    expect(calls.map((call) => call.length)).toEqual([1_000, 1_000, 500])
    expect(calls.flat()).toEqual(ids)
  })

  it('keeps each call’s body under 1 MB when Segment sends long userIds', () => {
    // Prepare: 1,000 ids of 5,000 characters (Segment caps messageId, not userId)
    const ids = Array.from({ length: 1_000 }, (_, i) => `${i}-${'x'.repeat(5_000)}`)

    // Act
    const calls = subscribeCalls(ids, (id) => id)

    // Assess: every body as sent fits, and nothing is lost or reordered
    for (const call of calls) {
      const body = JSON.stringify({ recipients: call.map((recipientId) => ({ recipientId })) })
      expect(Buffer.byteLength(body)).toBeLessThanOrEqual(LIST_SUBSCRIBE_MAX_BYTES)
    }
    expect(calls.length).toBeGreaterThan(1)
    expect(calls.flat()).toEqual(ids)
  })

  it('gives an id larger than the cap a call of its own rather than dropping it', () => {
    const huge = 'y'.repeat(LIST_SUBSCRIBE_MAX_BYTES + 10)

    expect(subscribeCalls(['a', huge, 'b'], (id) => id)).toEqual([['a'], [huge], ['b']])
  })
})
