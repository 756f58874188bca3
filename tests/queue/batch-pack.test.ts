import { describe, expect, it } from 'vitest'
import { packBatches, packInWaves } from '../../lib/queue/batch-pack.ts'
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

describe('packInWaves', () => {
  const item = (group: string, size = 100, id = `${group}-${size}`) => ({ group, size, id })

  it('keeps each group’s order: in one call in order, or in a later wave', () => {
    // Prepare: user a has 25 events, b and c a few, interleaved
    const items = Array.from({ length: 40 }, (_, i) =>
      i % 2 === 0 && i < 50 ? item('a', 100 + i, `a${i}`) : item(i % 4 === 1 ? 'b' : 'c', 50, `x${i}`),
    )

    // Act
    const waves = packInWaves(items, 4_000)

    // Assess: per group, waves then calls read in order give the arrival order back
    for (const group of ['a', 'b', 'c']) {
      const sent = waves.flatMap((wave) => wave.flatMap((batch) => batch.filter((x) => x.group === group)))
      expect(sent).toEqual(items.filter((x) => x.group === group))
      for (const wave of waves)
        expect(wave.filter((batch) => batch.some((x) => x.group === group)).length).toBeLessThanOrEqual(1)
    }
    for (const batch of waves.flat()) {
      expect(batch.length).toBeLessThanOrEqual(10)
      expect(batch.reduce((sum, x) => sum + x.size, 0)).toBeLessThanOrEqual(4_000)
    }
    expect(waves).toHaveLength(2)
  })

  it('packs one event per user into ceil(n/10) calls in a single wave', () => {
    const items = Array.from({ length: 95 }, (_, i) => item(`u${i}`, 200 + ((i * 7919) % 900)))

    const waves = packInWaves(items, 262_144)

    expect(waves).toHaveLength(1)
    expect(waves[0]).toHaveLength(10)
  })

  it('puts a small event that came first before a bigger one of the same user', () => {
    const waves = packInWaves([item('a', 100, 'identify'), item('a', 30_000, 'track')], 262_144)

    expect(waves.flat(2).map((x) => x.id)).toEqual(['identify', 'track'])
  })

  it('refuses an item that can never fit', () => {
    expect(() => packInWaves([item('a', 2_000)], 1_000)).toThrow(RangeError)
  })
})
