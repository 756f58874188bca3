import type { SegmentEvent, SegmentEventType } from '../segment/event.ts'

/**
 * Which Courier calls one Segment event becomes, declared as a table keyed by event type, the
 * way Courier's own Segment destination maps types (design.md, "What Courier accepts" and
 * "Contracts"). Pure: the worker sends the requests, in order, and classifies each answer.
 */

export interface CourierRequest {
  readonly method: 'POST' | 'PUT' | 'DELETE'
  /** Relative to the Courier base URL, every id segment already percent-encoded. */
  readonly path: string
  /** Sent as JSON; absent means no body and no Content-Type. */
  readonly body?: unknown
  /**
   * The body's exact JSON text, when the worker has it (the queued event): sent as is, so
   * numbers beyond 2^53 and key order reach Courier untouched by a parse/stringify round trip.
   */
  readonly rawBody?: string
}

/** An event Courier has no use for, with the reason the worker counts and logs it under. */
export interface Skip {
  readonly skip: string
}

export interface RoutingOptions {
  /** COURIER_GROUP_TENANTS: mirror group calls into Courier tenants and tenant memberships. */
  readonly groupTenants: boolean
}

type Route = (event: SegmentEvent, options: RoutingOptions) => CourierRequest[] | Skip

/**
 * An id as one percent-encoded path segment, or undefined when no encoding can make it one: URL
 * parsing resolves '.' and '..' (and their %2E spellings) as dot-segments, so `/profiles/..`
 * would become a request to `/` and `/users/../tenants/x` one to `/tenants/x`.
 * https://url.spec.whatwg.org/#double-dot-path-segment
 */
const segment = (id: unknown): string | undefined =>
  typeof id === 'string' && id !== '' && id !== '.' && id !== '..' ? encodeURIComponent(id) : undefined

/**
 * Courier's Segment endpoint takes the raw event: it is sent as the very object Segment gave us,
 * so the body is deep-equal to what Segment sent (design.md, "Contracts").
 */
const inboundRequest = (event: SegmentEvent): CourierRequest => ({
  method: 'POST',
  path: '/inbound/segment',
  body: event,
})

const inbound: Route = (event) => [inboundRequest(event)]

/**
 * Courier ignores group calls on /inbound/segment, so with groupTenants a group also upserts the
 * tenant and, for a known user, the membership. The tenant comes first: the membership refers to it.
 * Without an addressable groupId only the inbound call is made (Courier answers it, with a 400 if
 * groupId is missing): the tenant mirror is an extra, left out rather than sent to a wrong path.
 * https://www.courier.com/docs/reference/tenants/put/
 */
const inboundAndTenant: Route = (event, options) => {
  const tenant = segment(event.groupId)
  if (!options.groupTenants || tenant === undefined) return [inboundRequest(event)]
  const traits = event.traits ?? {}
  // A tenant needs a name: Segment's conventional `traits.name` when it is a usable string, else the id.
  const name = typeof traits.name === 'string' && traits.name !== '' ? traits.name : event.groupId
  const user = segment(event.userId)
  return [
    inboundRequest(event),
    { method: 'PUT', path: `/tenants/${tenant}`, body: { name, properties: traits } },
    ...(user === undefined ? [] : [{ method: 'PUT', path: `/users/${user}/tenants/${tenant}` } as const]),
  ]
}

/** A Segment user-deletion request deletes the Courier profile. https://www.courier.com/docs/reference/profiles/delete/ */
const deleteProfile: Route = (event) => {
  const user = segment(event.userId)
  return user === undefined
    ? {
        skip: `delete event without a usable userId (${JSON.stringify(event.userId) ?? 'none'}): no Courier profile to delete`,
      }
    : [{ method: 'DELETE', path: `/profiles/${user}` }]
}

/** Courier answers 501 "Event Type Unsupported" for these, so sending them would only fill the DLQ. */
const unsupported: Route = (event) => ({
  skip: `Courier does not handle ${event.type} events (it answers 501)`,
})

export const ROUTES = {
  identify: inbound,
  track: inbound,
  group: inboundAndTenant,
  delete: deleteProfile,
  page: unsupported,
  screen: unsupported,
  alias: unsupported,
} as const satisfies Readonly<Record<SegmentEventType, Route>>

export const isSkip = (route: CourierRequest[] | Skip): route is Skip => !Array.isArray(route)

export const routeEvent = (event: SegmentEvent, options: RoutingOptions): CourierRequest[] | Skip => {
  const route: Route | undefined = Object.hasOwn(ROUTES, event.type) ? ROUTES[event.type] : undefined
  // Only validated events reach here; the guard keeps a stray type from becoming a TypeError.
  return route === undefined
    ? { skip: `unknown event type ${JSON.stringify(event.type)}` }
    : route(event, options)
}
