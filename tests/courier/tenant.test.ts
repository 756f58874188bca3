import { describe, expect, it } from 'vitest'
import { mergeTenant } from '../../lib/courier/tenant.ts'

describe('mergeTenant: a group call never destroys a tenant', () => {
  it('keeps every field Courier holds and merges the traits into the properties, new values winning', () => {
    // Prepare: a tenant as GET /tenants/{id} returns it
    const current = {
      id: 'acme',
      name: 'Acme',
      brand_id: 'brand-1',
      parent_tenant_id: 'holding',
      default_preferences: { items: [{ id: 'marketing', status: 'OPTED_OUT' }] },
      properties: { plan: 'free', region: 'eu' },
      user_profile: { slack: { access_token: 't' } },
    }

    // Act
    const body = mergeTenant(current, { plan: 'pro', seats: 12 }, 'acme')

    // Assess: id is not a PUT field; nothing else is lost
    expect(body).toEqual({
      name: 'Acme',
      brand_id: 'brand-1',
      parent_tenant_id: 'holding',
      default_preferences: { items: [{ id: 'marketing', status: 'OPTED_OUT' }] },
      properties: { plan: 'pro', region: 'eu', seats: 12 },
      user_profile: { slack: { access_token: 't' } },
    })
  })

  it('renames the tenant only when the group carries a usable name', () => {
    const current = { id: 'acme', name: 'Acme' }

    expect(mergeTenant(current, { name: 'Acme Inc' }, 'acme').name).toBe('Acme Inc')
    expect(mergeTenant(current, { name: '' }, 'acme').name).toBe('Acme')
    expect(mergeTenant(current, { name: 42 }, 'acme').name).toBe('Acme')
  })

  it('creates a missing tenant named after traits.name, else the groupId', () => {
    expect(mergeTenant(undefined, { name: 'Acme Inc', plan: 'pro' }, 'g-1')).toEqual({
      name: 'Acme Inc',
      properties: { name: 'Acme Inc', plan: 'pro' },
    })
    expect(mergeTenant(undefined, {}, 'g-1')).toEqual({ name: 'g-1', properties: {} })
  })

  it('does not take a body that is not a tenant for one', () => {
    expect(mergeTenant('<html>', { plan: 'pro' }, 'g-1')).toEqual({
      name: 'g-1',
      properties: { plan: 'pro' },
    })
    expect(mergeTenant({ name: 'A', properties: [1] }, { plan: 'pro' }, 'g-1')).toEqual({
      name: 'A',
      properties: { plan: 'pro' },
    })
  })
})
