import { describe, expect, it } from 'vitest'
import { endpointClassOf } from '../../lib/courier/endpoint-class.ts'

describe('endpointClassOf', () => {
  it.each([
    ['/inbound/segment', 'inbound'],
    ['/profiles/u-1', 'profiles'],
    ['/profiles/u-1/lists', 'profiles'],
    ['/tenants/acme', 'tenants'],
    ['/users/u-1/tenants/acme', 'tenants'],
    ['/users/u-1/tenants', 'tenants'],
    ['/lists/aud-1/subscriptions', 'lists'],
    ['/lists/aud-1/subscriptions/u-1', 'lists'],
  ])('%s → %s', (path, expected) => {
    expect(endpointClassOf(path)).toBe(expected)
  })
})
