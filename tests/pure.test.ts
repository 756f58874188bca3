import { describe, expect, it } from 'vitest'
import { backoffCeiling, fullJitterBackoffMs, jitteredSeconds, retryDelaySeconds } from '../lib/backoff.ts'
import { packBatches } from '../lib/batch-pack.ts'
import { arrayElementSlices, objectValueStart } from '../lib/json-slices.ts'
import { sign, verifySignature } from '../lib/signature.ts'
import { messageSize, sqsSafeJson } from '../lib/sqs-message.ts'

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

describe('arrayElementSlices / objectValueStart', () => {
  it('returns each element exactly as written, strings with brackets and escapes included', () => {
    const text = ' [ {"a":"]},\\"x"} ,\n[1, [2]], "s\\\\", 3.50e1 ,null,{} ] '
    expect(arrayElementSlices(text, text.indexOf('['))).toEqual([
      '{"a":"]},\\"x"}',
      '[1, [2]]',
      '"s\\\\"',
      '3.50e1',
      'null',
      '{}',
    ])
    expect(arrayElementSlices('[]', 0)).toEqual([])
  })

  it('finds the value of a key in the top-level object, the last duplicate winning like JSON.parse', () => {
    const text = '{"sentAt": "x", "batch": [1], "b\\u0061tch" : [ {"k": 2} ]}'
    const start = objectValueStart(text, 'batch') as number
    expect(arrayElementSlices(text, start)).toEqual(['{"k": 2}'])
  })
})

describe('backoff', () => {
  it('doubles from the base up to the cap', () => {
    expect([1, 2, 3, 4, 8, 9, 60].map((n) => backoffCeiling(n, 10, 900))).toEqual([
      10, 20, 40, 80, 900, 900, 900,
    ])
  })

  it('full jitter stays within [0, ceiling]', () => {
    expect(fullJitterBackoffMs(3, 50, 1_000, () => 0)).toBe(0)
    expect(fullJitterBackoffMs(3, 50, 1_000, () => 0.999)).toBe(199)
  })

  it('a retry delay is never shorter than half the base and never longer than the ceiling', () => {
    expect(retryDelaySeconds(1, 10, 900, () => 0)).toBe(5)
    expect(retryDelaySeconds(20, 10, 900, () => 1)).toBe(900)
    expect(retryDelaySeconds(4, 10, 900, () => 0.5)).toBe(40)
  })

  it('jitters fixed delays by ±20%', () => {
    expect(jitteredSeconds(60, () => 0)).toBe(48)
    expect(jitteredSeconds(60, () => 1)).toBe(72)
  })
})

describe('signatures', () => {
  it('matches Segment: hex HMAC-SHA1 of the signed text', () => {
    // Known vector: HMAC-SHA1("key", "The quick brown fox jumps over the lazy dog")
    expect(sign('key', 'The quick brown fox jumps over the lazy dog')).toBe(
      'de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9',
    )
  })

  it('accepts the raw body, the parsed body or its first element, and nothing else', () => {
    const events = [{ b: 1, a: 2 }, { c: 3 }]
    const raw = JSON.stringify(events, null, 2)
    const parse = () => JSON.parse(raw)
    for (const text of [raw, JSON.stringify(events), JSON.stringify(events[0])]) {
      expect(verifySignature('s', sign('s', text), raw, parse)).toBe(true)
    }
    expect(verifySignature('s', sign('s', JSON.stringify(events[1])), raw, parse)).toBe(false)
    expect(verifySignature('s', 'zz', raw, parse)).toBe(false)
    expect(verifySignature('s', '', raw, parse)).toBe(false)
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
