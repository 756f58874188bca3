import { describe, expect, it } from 'vitest'
import { buildTimelines, formatTimeline, type LogEntry } from '../lib/timeline.ts'

/** Timelines read from the functions' log lines (pure). */

const at = (s: number) => new Date(Date.UTC(2026, 11, 4, 12, 0, s)).toISOString()
const enqueued = (s: number, ids: string[], users: string[]): LogEntry => ({
  timestamp: at(s),
  relayFunction: 'ingest',
  message: 'events enqueued',
  shape: 'array',
  received: ids.length,
  messageIds: ids,
  users,
})
const record = (s: number, messageId: string, user: string, fields: Record<string, unknown>): LogEntry => ({
  timestamp: at(s),
  relayFunction: 'deliver',
  message: 'record',
  messageId,
  user,
  type: 'track',
  ...fields,
})

describe('buildTimelines', () => {
  const lines: LogEntry[] = [
    enqueued(0, ['m1', 'm2', 'm3'], ['u_a', 'u_a', 'u_b']),
    record(1, 'm1', 'u_a', { outcome: 'retried', status: 503, attempt: 1, delaySeconds: 10, reason: 'down' }),
    record(1, 'm2', 'u_a', { outcome: 'waiting', attempt: 1, delaySeconds: 10 }),
    record(1, 'm3', 'u_b', { outcome: 'dead-lettered', status: 400, attempt: 1, reason: 'bad' }),
    record(11, 'm1', 'u_a', { outcome: 'delivered', status: 202, attempt: 2 }),
    {
      timestamp: at(12),
      relayFunction: 'audiences',
      message: 'list write',
      method: 'POST',
      path: '/lists/l-1/subscriptions',
      members: 2,
      status: 202,
      outcome: 'delivered',
      messageIds: ['m1'],
      users: ['u_a'],
    },
  ]

  it('gives one person’s events in order with each step, and the fate they add up to', () => {
    const timelines = buildTimelines(lines, { user: 'u_a' })

    expect(timelines.map((t) => [t.messageId, t.fate, t.fateReason])).toEqual([
      ['m1', 'delivered', undefined],
      ['m2', 'waiting', 'waiting, next attempt in 10 s'],
    ])
    expect(timelines[0]?.steps.map((s) => s.what)).toEqual([
      'received (array request of 3 events) and enqueued',
      'attempt 1: Courier 503 → retried, next attempt in 10 s (down)',
      'attempt 2: Courier 202 → delivered',
      'list sync: POST /lists/l-1/subscriptions (2 members) → 202 delivered',
    ])
  })

  it('finds one event by messageId, with a dead letter’s reason', () => {
    const [timeline] = buildTimelines(lines, { messageId: 'm3' })

    expect(timeline).toMatchObject({ user: 'u_b', fate: 'dead-lettered', fateReason: 'bad' })
    expect(formatTimeline(timeline as never)[0]).toBe('m3  track  user u_b  → dead-lettered: bad')
  })

  it('tells a rejection by ingest apart', () => {
    const rejected: LogEntry = {
      timestamp: at(0),
      relayFunction: 'ingest',
      message: 'events rejected',
      rejected: [{ index: 0, messageId: 'r1', error: 'track requires event' }],
    }

    expect(buildTimelines([rejected], { messageId: 'r1' })[0]).toMatchObject({
      fate: 'rejected',
      fateReason: 'track requires event',
    })
  })
})
