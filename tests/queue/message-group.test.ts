import { describe, expect, it } from 'vitest'
import { eventDeduplicationId, isValidFifoId, messageGroupId } from '../../lib/queue/message-group.ts'

describe('message groups and deduplication ids', () => {
  it('keeps a user id readable when SQS allows it, userId before anonymousId', () => {
    expect(messageGroupId({ userId: 'ada@example.com', anonymousId: 'a-1' }, '')).toBe('user:ada@example.com')
    expect(messageGroupId({ anonymousId: 'a-1' }, '')).toBe('anon:a-1')
    expect(messageGroupId({ userId: 42 }, '')).toBe('user:42')
  })

  it('hashes an id SQS would refuse, the same way every time', () => {
    const spaced = messageGroupId({ userId: 'Zoë Ω' }, '')
    const long = messageGroupId({ userId: 'x'.repeat(200) }, '')

    expect(spaced).toMatch(/^user#[0-9a-f]{64}$/)
    expect(messageGroupId({ userId: 'Zoë Ω', anonymousId: 'other' }, '{}')).toBe(spaced)
    expect(long).toMatch(/^user#[0-9a-f]{64}$/)
    for (const id of [spaced, long]) expect(isValidFifoId(id)).toBe(true)
  })

  it('gives an event without any id a group of its own: its messageId, else its text', () => {
    expect(messageGroupId({ messageId: 'm-1' }, '')).toBe('none:m-1')
    const a = messageGroupId('not an object', '"not an object"')
    const b = messageGroupId(null, 'null')

    expect(a).toMatch(/^none#[0-9a-f]{64}$/)
    expect(a).not.toBe(b)
  })

  it('derives the deduplication id from Segment’s messageId, within SQS’s rule', () => {
    expect(eventDeduplicationId('ajs-next-1')).toBe('m:ajs-next-1')
    expect(eventDeduplicationId('with space')).toMatch(/^m#[0-9a-f]{64}$/)
    expect(isValidFifoId(eventDeduplicationId('é'.repeat(100)))).toBe(true)
  })

  it('follows SQS’s character rule: 1-128 characters, alphanumeric and punctuation', () => {
    expect(isValidFifoId('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~aZ09')).toBe(true)
    expect(isValidFifoId('x'.repeat(128))).toBe(true)
    for (const bad of ['', 'x'.repeat(129), 'a b', 'ü', 'tab\t']) expect(isValidFifoId(bad)).toBe(false)
  })
})
