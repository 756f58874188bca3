import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { messageGroupId } from '../../lib/queue/message-group.ts'
import { validateEvent } from '../../lib/segment/event.ts'
import { firstElementText, nestsDeeperThan, topLevelKeys } from '../../lib/segment/json-slices.ts'
import { firstEventTexts } from '../../lib/segment/request.ts'

/** The raw-text readers the front door relies on before (and instead of) trusting a parse. */

const depthOf = (value: unknown): number =>
  typeof value === 'object' && value !== null ? 1 + Math.max(0, ...Object.values(value).map(depthOf)) : 0

describe('nestsDeeperThan', () => {
  it('agrees with the nesting of any JSON value, whatever the strings hold (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 12 }), fc.integer({ min: 0, max: 14 }), (value, limit) => {
        const text = JSON.stringify(value, null, 1)
        expect(nestsDeeperThan(text, limit)).toBe(depthOf(value) > limit)
      }),
    )
  })

  it('is not fooled by brackets and escaped quotes inside strings', () => {
    expect(nestsDeeperThan('{"a":"[[[[\\"{{{{"}', 1)).toBe(false)
    expect(nestsDeeperThan('[[1]]', 1)).toBe(true)
  })
})

describe('topLevelKeys', () => {
  it('lists every top-level key in order, as JSON.parse reads its name (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 })), (object) => {
        expect(topLevelKeys(JSON.stringify(object))).toEqual(Object.keys(object))
      }),
    )
  })

  it('keeps a repeated key, decoding escapes', () => {
    expect(topLevelKeys('{ "type" : "a", "t\\u0079pe":"b" , "x":{"type":1}}')).toEqual(['type', 'type', 'x'])
  })
})

describe('the first event of a batch', () => {
  it('is the exact first element, or the event inside an Extensible wrapper, plus its re-serialisation', () => {
    const text = '[ {"type":"track", "n":1} , {"type":"track"}]'
    expect(firstElementText(text, 1)).toBe('{"type":"track", "n":1}')
    expect(firstEventTexts(text, JSON.parse(text))).toEqual([
      '{"type":"track", "n":1}',
      '{"type":"track","n":1}',
    ])
    const wrapped = '{"batch":[{"json": {"a":1}}]}'
    expect(firstEventTexts(wrapped, JSON.parse(wrapped))).toEqual(['{"a":1}'])
    expect(firstEventTexts('{"type":"track"}', { type: 'track' })).toEqual([])
  })
})

describe('numeric ids past 2^53 in message groups', () => {
  it('groups on every digit of the text, not on the rounded double', () => {
    const text = '{"type":"track","event":"e","messageId":"m","userId":12345678901234567891}'
    expect(messageGroupId(JSON.parse(text), text)).toBe('user:12345678901234567891')
    const validation = validateEvent(JSON.parse(text), text)
    expect(validation.ok && validation.ids.userId).toBe('12345678901234567891')
  })
})
