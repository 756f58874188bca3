import { describe, expect, it } from 'vitest'
import { deletionStep, deletionTimeOf, isErasedBy, receivedTimeOf } from '../../lib/segment/erasure.ts'
import type { SegmentEvent } from '../../lib/segment/event.ts'
import { deletion, group, identify, page, track } from '../support/fixtures.ts'

const asEvent = (fixture: Record<string, unknown>) => fixture as unknown as SegmentEvent
const DELETED_AT = Date.parse('2026-12-01T10:00:00.000Z')
const deleted = { at: DELETED_AT, messageId: 'relay-sha256-aaa' }

describe('isErasedBy: what a deletion covers, by the time Segment received the event', () => {
  it.each([
    ['identify', identify],
    ['track', track],
    ['group', group],
  ])('a %s Segment received before the deletion is erased; one received after is not', (_type, make) => {
    const before = asEvent(make({ receivedAt: '2026-12-01T09:59:59.999Z' }))
    const after = asEvent(make({ receivedAt: '2026-12-01T10:00:00.001Z' }))

    expect(isErasedBy(before, deleted)).toBe(true)
    expect(isErasedBy(after, deleted)).toBe(false)
  })

  it('a tie to the millisecond errs on the side of erasing', () => {
    expect(isErasedBy(asEvent(identify({ receivedAt: '2026-12-01T10:00:00.000Z' })), deleted)).toBe(true)
  })

  it("compares receivedAt (Segment's clock), not the device-corrected or backdated timestamp", () => {
    // A server library backdated the event before the deletion, but Segment received it after.
    const backdated = asEvent(
      identify({ timestamp: '2026-11-01T00:00:00.000Z', receivedAt: '2026-12-01T10:05:00.000Z' }),
    )
    // A device clock ahead: timestamp after the deletion, received before it.
    const ahead = asEvent(
      identify({ timestamp: '2026-12-02T00:00:00.000Z', receivedAt: '2026-12-01T09:00:00.000Z' }),
    )

    expect(isErasedBy(backdated, deleted)).toBe(false)
    expect(isErasedBy(ahead, deleted)).toBe(true)
  })

  it('falls back on timestamp without receivedAt, and erases an event with neither time', () => {
    const { receivedAt: _r, ...noReceivedAt } = identify({ timestamp: '2026-12-01T10:00:01.000Z' })
    const { receivedAt: _s, timestamp: _t, ...noTime } = identify()

    expect(receivedTimeOf(asEvent(noReceivedAt))).toBe(DELETED_AT + 1_000)
    expect(isErasedBy(asEvent(noReceivedAt), deleted)).toBe(false)
    expect(isErasedBy(asEvent(noTime), deleted)).toBe(true)
  })

  it('never erases without a deletion, nor deletions and the types the relay skips', () => {
    const early = { receivedAt: '2026-01-01T00:00:00.000Z' }

    expect(isErasedBy(asEvent(identify(early)), undefined)).toBe(false)
    expect(isErasedBy(asEvent(deletion(early)), deleted)).toBe(false)
    expect(isErasedBy(asEvent(page(early)), deleted)).toBe(false)
  })

  it("a deletion's time is its timestamp, the only time Segment's notification carries", () => {
    const notification = asEvent({ type: 'delete', userId: 'u-1', timestamp: '2026-12-01T10:00:00.000Z' })

    expect(deletionTimeOf(notification)).toBe(DELETED_AT)
  })
})

describe('deletionStep: a deletion is carried out once, and never after a later one', () => {
  it('performs a deletion never marked, or marked and not finished (its retry)', () => {
    expect(deletionStep(deleted, undefined)).toBe('perform')
    expect(deletionStep(deleted, { ...deleted, done: false })).toBe('perform')
  })

  it('does not repeat a deletion already carried out (same messageId, Segment’s or derived)', () => {
    expect(deletionStep(deleted, { ...deleted, done: true })).toBe('repeat')
  })

  it('leaves a person alone whom a later deletion covers (they may have come back since)', () => {
    const later = { at: DELETED_AT + 60_000, messageId: 'relay-sha256-bbb', done: true }

    expect(deletionStep(deleted, later)).toBe('superseded')
  })

  it('performs a new deletion of a person deleted before (who came back in between)', () => {
    const earlier = { at: DELETED_AT - 86_400_000, messageId: 'relay-sha256-000', done: true }

    expect(deletionStep(deleted, earlier)).toBe('perform')
  })
})
