import { describe, expect, it } from 'vitest'
import {
  DEV_USER_KEY_SECRET,
  describeValue,
  isUserKey,
  jsonErrorForLog,
  pathForLog,
  textForLog,
  userKey,
  userKeyWith,
} from '../lib/user-key.ts'

/** Pseudonymous user keys and the texts made safe to log. */

const key = userKeyWith(DEV_USER_KEY_SECRET)

describe('user keys', () => {
  it('are a keyed hash: the same id and secret give the same key, another secret another key', () => {
    expect(key('jane@example.com')).toBe(userKey('jane@example.com'))
    expect(key('jane@example.com')).toMatch(/^u_[0-9a-f]{16}$/)
    expect(isUserKey(key('jane@example.com'))).toBe(true)
    expect(userKeyWith('another')('jane@example.com')).not.toBe(key('jane@example.com'))
    expect(key('jane@example.com')).not.toBe(key('jane@example.org'))
  })
})

describe('pathForLog', () => {
  it.each([
    ['/users/jane.doe%40example.com/tenants', `/users/${key('jane.doe@example.com')}/tenants`],
    ['/users/u-1/tenants/acme', `/users/${key('u-1')}/tenants/${key('acme')}`],
    ['/profiles/%2B14155550123', `/profiles/${key('+14155550123')}`],
    ['/profiles/u-1/lists', `/profiles/${key('u-1')}/lists`],
    ['/lists/vip-1/subscriptions', '/lists/vip-1/subscriptions'],
    [
      '/lists/vip-1/subscriptions/jane%40example.com',
      `/lists/vip-1/subscriptions/${key('jane@example.com')}`,
    ],
    ['/tenants/acme', `/tenants/${key('acme')}`],
    ['/inbound/segment', '/inbound/segment'],
    ['/unknown/jane@example.com/x', '/unknown/…'],
  ])('%s → %s', (path, logged) => {
    expect(pathForLog(path)).toBe(logged)
  })

  it('leaves a path already keyed as it is', () => {
    const once = pathForLog('/users/jane%40example.com/tenants')
    expect(pathForLog(once)).toBe(once)
  })
})

describe('texts made safe', () => {
  it('keys paths inside a reason and masks emails and E.164 phones Courier quoted', () => {
    expect(
      textForLog(
        'invalid email jane@example.com, phone +14155550123 (DELETE /users/jane%40example.com/tenants)',
      ),
    ).toBe(`invalid email <email>, phone <phone> (DELETE /users/${key('jane@example.com')}/tenants)`)
  })

  it('keeps only the position of a JSON error, never the text it quotes', () => {
    let error: unknown
    try {
      JSON.parse('{"userId": jane@example.com}')
    } catch (caught) {
      error = caught
    }
    expect((error as Error).message).toContain('jane') // what V8 would have logged
    expect(jsonErrorForLog(error)).toMatch(/^malformed JSON( at position \d+)?$/)
    expect(jsonErrorForLog(error)).not.toContain('jane')
  })

  it('describes a value without its content', () => {
    expect(describeValue('jane@example.com')).toBe('a string of 16 characters')
    expect(describeValue(42)).toBe('a number')
    expect(describeValue(['a'])).toBe('an array of 1')
    expect(describeValue(undefined)).toBe('nothing')
  })
})
