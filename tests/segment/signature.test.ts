import { describe, expect, it } from 'vitest'
import { arrayElementSlices, objectValueStart } from '../../lib/segment/json-slices.ts'
import { sign, verifySignature } from '../../lib/segment/signature.ts'

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

  it("accepts the Extensible Webhook's signature: over the first unwrapped event of a {json} batch", () => {
    const events = [
      { type: 'track', n: 1 },
      { type: 'track', n: 2 },
    ]
    const raw = JSON.stringify(events.map((event) => ({ json: event })))
    const parse = () => JSON.parse(raw)

    expect(verifySignature('s', sign('s', JSON.stringify(events[0])), raw, parse)).toBe(true)
    expect(verifySignature('s', sign('s', JSON.stringify(events[1])), raw, parse)).toBe(false)
  })
})
