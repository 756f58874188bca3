import type { SegmentEvent, SegmentEventType } from '../segment/event.ts'
import { type Identities, readIdentities } from '../segment/identity.ts'

/**
 * Which Courier calls one Segment event becomes, declared as a table keyed by event type, the
 * way Courier's own Segment destination maps types
 * (https://github.com/segmentio/action-destinations/tree/main/packages/destination-actions/src/destinations/courier,
 * https://www.courier.com/docs/external-integrations/cdp/segment). Pure: the worker sends the
 * requests, in order, and classifies each answer.
 */

export interface CourierRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  /** Relative to the Courier base URL, every id segment already percent-encoded. */
  readonly path: string
  /** Sent as JSON; absent means no body and no Content-Type. */
  readonly body?: unknown
  /**
   * The body's exact JSON text, when the worker has it (the queued event): sent as is, so
   * numbers beyond 2^53 and key order reach Courier untouched by a parse/stringify round trip.
   */
  readonly rawBody?: string
  /**
   * A read-modify-write of a tenant (`PUT /tenants/{id}` replaces the whole tenant): the worker
   * first GETs `path`, then PUTs mergeTenant(answer, traits, fallbackName) (lib/courier/tenant.ts);
   * a 404 on the GET means there is none yet and it is created. `body` is then unused.
   */
  readonly tenantMerge?: { readonly traits: Record<string, unknown>; readonly fallbackName: string }
  /**
   * One step of removing a person: attempted whatever the other steps answered, and a 404 means
   * the thing is already gone (done). The record is done when every step is.
   */
  readonly deletion?: true
}

/** An event Courier has no use for, with the reason the worker counts and logs it under. */
export interface Skip {
  readonly skip: string
}

export interface RoutingOptions {
  /** COURIER_GROUP_TENANTS: mirror group calls into Courier tenants and tenant memberships. */
  readonly groupTenants: boolean
}

type Route = (event: SegmentEvent, options: RoutingOptions, ids: Identities) => CourierRequest[] | Skip

/**
 * An id as one percent-encoded path segment, or undefined when no encoding can make it one: URL
 * parsing resolves '.' and '..' (and their %2E spellings) as dot-segments, so `/profiles/..`
 * would become a request to `/` and `/users/../tenants/x` one to `/tenants/x`
 * (https://url.spec.whatwg.org/#double-dot-path-segment); and a string with a lone surrogate has no
 * UTF-8 form, so encodeURIComponent throws on it
 * (https://tc39.es/ecma262/#sec-encodeuricomponent-uricomponent). Never throws.
 */
export const pathSegment = (id: unknown): string | undefined =>
  typeof id === 'string' && id !== '' && id !== '.' && id !== '..' && id.isWellFormed()
    ? encodeURIComponent(id)
    : undefined

/**
 * Courier's Segment endpoint takes the raw event: it is sent as the very object Segment gave us,
 * so the body is deep-equal to what Segment sent: Courier maps it itself
 * (https://www.courier.com/docs/external-integrations/cdp/segment/segment-integration).
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
 * The tenant write is a read-modify-write (see CourierRequest.tenantMerge): `PUT /tenants/{id}`
 * replaces the whole tenant, and a group call must never wipe its brand, parent, preferences,
 * user profile or other properties. https://www.courier.com/docs/reference/tenants/put/
 * The membership `PUT /users/{user_id}/tenants/{tenant_id}` carries a JSON body as the spec
 * defines it (`{profile?: object}`, courier-node `src/resources/users/tenants.ts` addSingle);
 * `profile` is left out: a group call has no tenant-specific user profile to give, and sending
 * an empty one could replace one set elsewhere.
 * Without an addressable groupId only the inbound call is made (Courier answers it, with a 400 if
 * groupId is missing): the tenant mirror is an extra, left out rather than sent to a wrong path.
 */
const inboundAndTenant: Route = (event, options, ids) => {
  const tenant = pathSegment(ids.groupId)
  if (!options.groupTenants || tenant === undefined) return [inboundRequest(event)]
  const traits = event.traits ?? {}
  const user = pathSegment(ids.userId)
  return [
    inboundRequest(event),
    {
      method: 'PUT',
      path: `/tenants/${tenant}`,
      tenantMerge: { traits, fallbackName: ids.groupId as string },
    },
    ...(user === undefined
      ? []
      : [{ method: 'PUT', path: `/users/${user}/tenants/${tenant}`, body: {} } as const]),
  ]
}

/**
 * A Segment user-deletion request removes the person from Courier: every list subscription
 * (`DELETE /profiles/{id}/lists`), every tenant membership (`DELETE /users/{id}/tenants`), then
 * the profile itself (`DELETE /profiles/{id}`, 204), last so nothing refers to a profile already
 * gone. Each step is attempted whatever the others answer and is idempotent (a 404 is "already
 * gone"), so a retry of the record repeats only harmless deletes.
 * https://www.courier.com/docs/reference/profiles/delete/ ; courier-node
 * `src/resources/profiles/lists.ts` delete, `src/resources/users/tenants.ts` removeAll.
 */
const deletePerson: Route = (event, _options, ids) => {
  const user = pathSegment(ids.userId)
  return user === undefined
    ? {
        skip: `delete event without a usable userId (${JSON.stringify(event.userId) ?? 'none'}): no Courier profile to delete`,
      }
    : [
        { method: 'DELETE', path: `/profiles/${user}/lists`, deletion: true },
        { method: 'DELETE', path: `/users/${user}/tenants`, deletion: true },
        { method: 'DELETE', path: `/profiles/${user}`, deletion: true },
      ]
}

/** Courier answers 501 "Event Type Unsupported" for these, so sending them would only fill the DLQ. */
const unsupported: Route = (event) => ({
  skip: `Courier does not handle ${event.type} events (it answers 501)`,
})

export const ROUTES = {
  identify: inbound,
  track: inbound,
  group: inboundAndTenant,
  delete: deletePerson,
  page: unsupported,
  screen: unsupported,
  alias: unsupported,
} as const satisfies Readonly<Record<SegmentEventType, Route>>

export const isSkip = (route: CourierRequest[] | Skip): route is Skip => !Array.isArray(route)

const identitiesOf = (event: SegmentEvent): Identities => {
  const read = readIdentities(event)
  return read.ok ? read.ids : {}
}

/**
 * `ids` are the event's ids in their string form (validateEvent gives them, exact for 20-digit
 * numbers); read from the event when not given. A numeric userId routes as its string form.
 */
export const routeEvent = (
  event: SegmentEvent,
  options: RoutingOptions,
  ids?: Identities,
): CourierRequest[] | Skip => {
  const route: Route | undefined = Object.hasOwn(ROUTES, event.type) ? ROUTES[event.type] : undefined
  // Only validated events reach here; the guard keeps a stray type from becoming a TypeError.
  if (route === undefined) return { skip: `unknown event type ${JSON.stringify(event.type)}` }
  return route(event, options, ids ?? identitiesOf(event))
}
