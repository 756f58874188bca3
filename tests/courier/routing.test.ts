import { describe, expect, it } from 'vitest'
import { type CourierRequest, isSkip, routeEvent } from '../../lib/courier/routing.ts'
import type { SegmentEvent } from '../../lib/segment/event.ts'
import { alias, deletion, group, identify, page, screen, track } from '../support/fixtures.ts'

const off = { groupTenants: false }
const on = { groupTenants: true }
const asEvent = (fixture: Record<string, unknown>) => fixture as unknown as SegmentEvent

describe('routeEvent: what Courier receives for each Segment type', () => {
  it.each([
    ['identify', identify],
    ['track', track],
    ['group', group],
  ])('%s goes to POST /inbound/segment as the very event Segment sent', (_type, make) => {
    // Prepare
    const event = asEvent(make())
    const snapshot = structuredClone(event)

    // Act
    const route = routeEvent(event, off)

    // Assess
    expect(route).toEqual([{ method: 'POST', path: '/inbound/segment', body: snapshot }])
    const [request] = route as CourierRequest[]
    expect(request?.body).toBe(event)
    expect(event).toEqual(snapshot)
  })

  it('delete removes the person: list subscriptions, tenant memberships, then the profile, each a step of its own', () => {
    const event = asEvent(deletion({ userId: 'user-42' }))

    const route = routeEvent(event, off)

    expect(route).toEqual([
      { method: 'DELETE', path: '/profiles/user-42/lists', deletion: true },
      { method: 'DELETE', path: '/users/user-42/tenants', deletion: true },
      { method: 'DELETE', path: '/profiles/user-42', deletion: true },
    ])
    for (const request of route as CourierRequest[]) expect(request).not.toHaveProperty('body')
  })

  it('skips a delete without userId instead of guessing a profile', () => {
    const event = asEvent(deletion({ userId: undefined }))

    const route = routeEvent(event, off)

    expect(isSkip(route)).toBe(true)
  })

  it.each([
    ['page', page],
    ['screen', screen],
    ['alias', alias],
  ])('%s is skipped: Courier would answer 501', (type, make) => {
    const route = routeEvent(asEvent(make()), on)

    expect(route).toEqual({ skip: `Courier does not handle ${type} events (it answers 501)` })
  })

  it('skips an unknown type rather than throwing', () => {
    const route = routeEvent(asEvent({ type: 'flush', messageId: 'm-1', userId: 'u' }), on)

    expect(isSkip(route)).toBe(true)
  })

  it.each([
    ['identify', identify],
    ['track', track],
  ])('groupTenants does not change %s', (_type, make) => {
    const event = asEvent(make())

    expect(routeEvent(event, on)).toEqual(routeEvent(event, off))
  })
})

describe('routeEvent: group with groupTenants', () => {
  it('adds the tenant and the membership, in that order, after the inbound call', () => {
    // Prepare
    const event = asEvent(
      group({ groupId: 'acme', userId: 'user-1', traits: { name: 'Acme Inc', plan: 'pro' } }),
    )

    // Act
    const route = routeEvent(event, on)

    // Assess
    expect(route).toEqual([
      { method: 'POST', path: '/inbound/segment', body: event },
      {
        method: 'PUT',
        path: '/tenants/acme',
        tenantMerge: { traits: { name: 'Acme Inc', plan: 'pro' }, fallbackName: 'acme' },
      },
      { method: 'PUT', path: '/users/user-1/tenants/acme', body: {} },
    ])
    expect((route as CourierRequest[])[0]?.body).toBe(event)
    // A read-modify-write: no body is declared for the tenant, the worker merges one.
    expect((route as CourierRequest[])[1]).not.toHaveProperty('body')
  })

  it('merges an absent traits object as no traits, the groupId as the name for a new tenant', () => {
    const route = routeEvent(asEvent(group({ groupId: 'g-1', traits: undefined })), on) as CourierRequest[]

    expect(route[1]?.tenantMerge).toEqual({ traits: {}, fallbackName: 'g-1' })
  })

  it('adds no membership for an anonymous group call', () => {
    const event = asEvent(group({ groupId: 'acme', userId: undefined, anonymousId: 'anon-9' }))

    const route = routeEvent(event, on) as CourierRequest[]

    expect(route.map((request) => `${request.method} ${request.path}`)).toEqual([
      'POST /inbound/segment',
      'PUT /tenants/acme',
    ])
  })

  it('adds nothing but the inbound call when groupTenants is off', () => {
    const event = asEvent(group())

    expect(routeEvent(event, off)).toEqual([{ method: 'POST', path: '/inbound/segment', body: event }])
  })
})

describe('routeEvent: ids are percent-encoded path segments', () => {
  it.each([
    ['a slash', 'org/team', 'org%2Fteam'],
    ['spaces', 'Ada Lovelace', 'Ada%20Lovelace'],
    ['unicode', 'Zoë 🦄', 'Zo%C3%AB%20%F0%9F%A6%84'],
    ['dots inside an id', '...', '...'],
    ['query and fragment characters', 'a?b#c&d', 'a%3Fb%23c%26d'],
    ['a percent sign', '100%', '100%25'],
  ])('with %s', (_name, id, encoded) => {
    // Prepare
    const deleteEvent = asEvent(deletion({ userId: id }))
    const groupEvent = asEvent(group({ groupId: id, userId: id }))

    // Act
    const deleteRoute = routeEvent(deleteEvent, off) as CourierRequest[]
    const groupRoute = routeEvent(groupEvent, on) as CourierRequest[]

    // Assess
    expect(deleteRoute.map((request) => request.path)).toEqual([
      `/profiles/${encoded}/lists`,
      `/users/${encoded}/tenants`,
      `/profiles/${encoded}`,
    ])
    expect(groupRoute.slice(1).map((request) => request.path)).toEqual([
      `/tenants/${encoded}`,
      `/users/${encoded}/tenants/${encoded}`,
    ])
    // The tenant's name falls back to the id as it was; only paths are encoded.
    expect(groupRoute[1]?.tenantMerge?.fallbackName).toBe(id)
  })
})

describe('routeEvent: ids that cannot be a path segment', () => {
  it.each(['.', '..'])('skips a delete for userId %j instead of calling a resolved-away path', (id) => {
    // Prepare: URL parsing would turn /profiles/.. into /
    const event = asEvent(deletion({ userId: id }))

    // Act
    const route = routeEvent(event, off)

    // Assess
    expect(route).toEqual({ skip: expect.stringContaining('delete event without a usable userId') })
  })

  it.each(['.', '..'])('leaves out tenant calls for groupId %j and a membership for userId %j', (id) => {
    const badGroup = routeEvent(asEvent(group({ groupId: id })), on) as CourierRequest[]
    const badUser = routeEvent(asEvent(group({ groupId: 'acme', userId: id })), on) as CourierRequest[]

    expect(badGroup.map((request) => request.path)).toEqual(['/inbound/segment'])
    expect(badUser.map((request) => request.path)).toEqual(['/inbound/segment', '/tenants/acme'])
  })
})
