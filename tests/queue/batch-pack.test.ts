import { describe, expect, it } from 'vitest'
import { packBatches } from '../../lib/queue/batch-pack.ts'
import { messageSize, sqsSafeJson } from '../../lib/queue/sqs-message.ts'

describe('packBatches', () => {
  const items = (...sizes: number[]) => sizes.map((size, id) => ({ id, size }))

  it('never exceeds 10 entries or the byte budget, and keeps every item once', () => {
    const input = items(...Array.from({ length: 95 }, (_, i) => 100 + ((i * 7919) % 900)))
    const batches = packBatches(input, 4_000)

    for (const batch of batches) {
      expect(batch.length).toBeLessThanOrEqual(10)
      expect(batch.reduce((sum, item) => sum + item.size, 0)).toBeLessThanOrEqual(4_000)
    }
    expect(
      batches
        .flat()
        .map((item) => item.id)
        .sort((a, b) => a - b),
    ).toEqual(input.map((item) => item.id))
  })

  it('uses ceil(n/10) batches for small items and fills large ones by bytes', () => {
    expect(packBatches(items(...Array(41).fill(10)), 262_144)).toHaveLength(5)
    // 6 of 600 + 6 of 400 fit two 1000-byte batches exactly only when paired large-with-small
    expect(packBatches(items(600, 600, 400, 400), 1_000)).toHaveLength(2)
  })

  it('refuses an item that can never fit', () => {
    expect(() => packBatches(items(2_000), 1_000)).toThrow(RangeError)
  })
})

describe('SQS message text', () => {
  it('escapes only what SQS refuses, keeping the JSON value', () => {
    const text = JSON.stringify({ a: 'ok 🦄 ☃', b: 'x\uFFFEy\uD800z' })
    const safe = sqsSafeJson(text)
    expect(safe).toContain('🦄')
    expect(safe).toContain('\\ufffe')
    expect(safe).toContain('\\ud800')
    expect(JSON.parse(safe)).toEqual(JSON.parse(text))
    expect(sqsSafeJson('{"plain":true}')).toBe('{"plain":true}')
  })

  it('sizes a message the way SQS counts it', () => {
    expect(messageSize('é', { type: 'track' })).toBe(2 + 4 + 6 + 5)
  })
})
