import { describe, expect, it } from 'vitest'
import { routeEvent } from '../../lib/courier/routing.ts'
import { DERIVED_MESSAGE_ID_PREFIX, deriveMessageId, validateEvent } from '../../lib/segment/event.ts'
import { identityString, readIdentities, userKey, userKeyOf } from '../../lib/segment/identity.ts'
import { alias, deletion, group, identify, track } from '../support/fixtures.ts'

/** Segment's classic Webhooks user-deletion notification, exactly as its docs show it. */
const DELETE_NOTIFICATION = '{"type":"delete","userId":"u-1","timestamp":"2026-11-28T12:00:00.276Z"}'

describe('the deletion notification (no messageId)', () => {
  it('is valid, with a messageId derived from its text', () => {
    // Act
    const validation = validateEvent(JSON.parse(DELETE_NOTIFICATION), DELETE_NOTIFICATION)

    // Assess
    expect(validation).toMatchObject({ ok: true, ids: { userId: 'u-1' } })
    const { event } = validation as Extract<typeof validation, { ok: true }>
    expect(event.messageId).toBe(deriveMessageId(DELETE_NOTIFICATION))
    expect(event.messageId.startsWith(DERIVED_MESSAGE_ID_PREFIX)).toBe(true)
    expect(event.messageId.length).toBeLessThanOrEqual(100)
  })

  it('derives the same id for a retry of the same bytes and another id for another notification', () => {
    const other = DELETE_NOTIFICATION.replace('u-1', 'u-2')

    const first = deriveMessageId(DELETE_NOTIFICATION)
    const retry = deriveMessageId(`${DELETE_NOTIFICATION}`)
    const second = deriveMessageId(other)

    expect(retry).toBe(first)
    expect(second).not.toBe(first)
  })

  it('keeps a messageId Segment did send, and still needs a userId', () => {
    const withId = deletion({ messageId: 'm-del' })
    const anonymous = { type: 'delete', anonymousId: 'a-1', timestamp: '2026-11-28T12:00:00Z' }

    expect(validateEvent(withId)).toMatchObject({ ok: true, event: { messageId: 'm-del' } })
    expect(validateEvent(anonymous)).toEqual({
      ok: false,
      error: 'delete requires userId (a non-empty string or a number)',
      messageId: undefined,
    })
  })

  it('does not derive a messageId for the types Segment always sends one with', () => {
    const { messageId: _, ...noId } = track()

    expect(validateEvent(noId)).toMatchObject({
      ok: false,
      error: 'messageId is required and must be a non-empty string',
    })
  })

  it('routes to DELETE /profiles/{userId}', () => {
    const validation = validateEvent(JSON.parse(DELETE_NOTIFICATION), DELETE_NOTIFICATION)
    const { event, ids } = validation as Extract<typeof validation, { ok: true }>

    expect(routeEvent(event, { groupTenants: false }, ids)).toContainEqual(
      expect.objectContaining({ method: 'DELETE', path: '/profiles/u-1' }),
    )
  })
})

describe('identities as the libraries send them', () => {
  it('accepts a numeric userId alone, reading it as its string form', () => {
    const event = identify({ userId: 12345, anonymousId: undefined })

    const validation = validateEvent(event)

    expect(validation).toMatchObject({ ok: true, ids: { userId: '12345' } })
  })

  it('keeps a 20-digit numeric id exact when the text is known', () => {
    const text = '{"type":"delete","userId":12345678901234567890,"timestamp":"2026-11-28T12:00:00Z"}'

    const validation = validateEvent(JSON.parse(text), text)
    const { event, ids } = validation as Extract<typeof validation, { ok: true }>

    expect(ids.userId).toBe('12345678901234567890')
    expect(routeEvent(event, { groupTenants: false }, ids)).toContainEqual(
      expect.objectContaining({ method: 'DELETE', path: '/profiles/12345678901234567890' }),
    )
  })

  it.each([
    ['userId', true, 'userId must be a string or a number; got a boolean'],
    ['userId', { id: 1 }, 'userId must be a string or a number; got a object'],
    ['anonymousId', ['a'], 'anonymousId must be a string or a number; got an array'],
  ])('reports a %s of another type as what it is, not as missing', (field, value, error) => {
    const event = identify({ userId: 'u-1', [field]: value })

    expect(validateEvent(event)).toMatchObject({ ok: false, error })
  })

  it('treats null and "" as no id (analytics.js sends userId: null for anonymous visitors)', () => {
    const anonymous = track({ userId: null, anonymousId: 'a-1' })
    const nobody = track({ userId: '', anonymousId: null })

    expect(validateEvent(anonymous)).toMatchObject({ ok: true, ids: { anonymousId: 'a-1' } })
    expect(validateEvent(nobody)).toMatchObject({
      ok: false,
      error: 'track requires userId or anonymousId (a non-empty string or a number)',
    })
  })

  it('applies the same rule to groupId and previousId', () => {
    expect(validateEvent(group({ groupId: 42 }))).toMatchObject({ ok: true, ids: { groupId: '42' } })
    expect(validateEvent(group({ groupId: false }))).toMatchObject({
      ok: false,
      error: 'groupId must be a string or a number; got a boolean',
    })
    expect(validateEvent(alias({ previousId: 7 }))).toMatchObject({ ok: true, ids: { previousId: '7' } })
    expect(validateEvent(alias({ previousId: undefined }))).toMatchObject({
      ok: false,
      error: 'alias requires previousId (a non-empty string or a number)',
    })
  })

  it('refuses NaN-like numbers JSON cannot carry and keeps decimals as String(n)', () => {
    expect(identityString('userId', Number.POSITIVE_INFINITY)).toEqual({
      error: 'userId must be a string or a number; got a number',
    })
    expect(identityString('userId', 1.5)).toEqual({ id: '1.5' })
  })

  it('userKey is the userId, else the anonymousId: what FIFO groups a person by', () => {
    expect(userKey({ userId: '1', anonymousId: 'a' })).toBe('1')
    expect(userKey({ anonymousId: 'a' })).toBe('a')
    expect(userKey({})).toBeUndefined()
    expect(userKeyOf({ userId: 12345 })).toBe('12345')
    const twenty = '{"userId":12345678901234567890}'
    expect(readIdentities(JSON.parse(twenty), twenty)).toEqual({
      ok: true,
      ids: { userId: '12345678901234567890' },
    })
  })

  it('routes a numeric userId and groupId as their string forms', () => {
    const event = group({ userId: 12345, groupId: 678 })
    const validation = validateEvent(event)
    const { event: valid, ids } = validation as Extract<typeof validation, { ok: true }>

    const route = routeEvent(valid, { groupTenants: true }, ids)

    expect(route).toEqual([
      { method: 'POST', path: '/inbound/segment', body: event },
      { method: 'PUT', path: '/tenants/678', tenantMerge: { traits: event.traits, fallbackName: '678' } },
      { method: 'PUT', path: '/users/12345/tenants/678', body: {} },
    ])
  })
})
