import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { arrayElementSlices, objectValueStart } from '../../lib/segment/json-slices.ts'
import { firstEventTexts } from '../../lib/segment/request.ts'
import { parseSignature, sign, signatureCoverage, verifySignature } from '../../lib/segment/signature.ts'

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

  it('says what a signature covers: the raw body or the parsed body (every event), a first element (that one only), or nothing', () => {
    // Prepare
    const events = [{ b: 1, a: 2 }, { c: 3 }]
    const raw = JSON.stringify(events, null, 2)
    const parsed = JSON.parse(raw) as unknown
    const candidates = {
      raw,
      parsed: () => ({ whole: JSON.stringify(parsed), firstEvent: firstEventTexts(raw, parsed) }),
    }
    const coverage = (text: string) => signatureCoverage('s', Buffer.from(sign('s', text), 'hex'), candidates)

    // Act / Assess
    expect(coverage(raw)).toEqual({ covers: 'body' })
    expect(coverage(JSON.stringify(events))).toEqual({ covers: 'parsed', signedText: JSON.stringify(events) })
    expect(coverage(JSON.stringify(events[0]))).toEqual({
      covers: 'first-event',
      signedText: JSON.stringify(events[0]),
    })
    expect(coverage(JSON.stringify(events[1]))).toEqual({ covers: 'nothing' })
  })

  it('takes only exactly 40 hex digits: any case, surrounding spaces trimmed, nothing appended', () => {
    const valid = sign('s', 'body')
    expect(parseSignature(valid)?.toString('hex')).toBe(valid)
    expect(parseSignature(` ${valid.toUpperCase()}\t`)?.toString('hex')).toBe(valid)
    for (const bad of [`${valid}zz`, `${valid}00`, valid.slice(0, 39), `zz${valid}`, '', 'sha1=' + valid]) {
      expect(parseSignature(bad)).toBeUndefined()
    }
    expect(verifySignature('s', `${valid}zz`, 'body', () => 'body')).toBe(false)
  })

  it('never takes a string that is not 40 hex digits (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (header) => {
        fc.pre(!/^\s*[0-9a-fA-F]{40}\s*$/.test(header))
        expect(parseSignature(header)).toBeUndefined()
      }),
    )
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
