import { randomBytes } from 'node:crypto'

/**
 * The Courier sandbox's model of Courier: the state Courier keeps (profiles, tenants, tenant
 * memberships, lists and their subscriptions, inbound events) and the answer each API route gives,
 * apart from HTTP and faults (courier-sandbox.ts, sandbox-faults.ts).
 *
 * Sources, cited per route below:
 * - Courier's API reference, https://www.courier.com/docs/reference/ (and its overview page for
 *   errors, payload size and idempotency: https://www.courier.com/docs/reference/api-overview)
 * - Courier's generated SDKs, which are built from Courier's OpenAPI spec: trycourier/courier-node
 *   src/resources/{inbound,profiles/*,tenants/tenants,users/tenants,lists/*}.ts
 * - Courier's Segment integration guide for POST /inbound/segment, which the SDKs do not cover:
 *   identify, track and group are taken, identify's traits merge into the user's profile
 *   (https://www.courier.com/docs/external-integrations/cdp/segment,
 *   https://segment.com/docs/connections/destinations/catalog/courier/).
 *
 * Where the reference is silent (most error bodies, 404s, what an unknown field does), the comment
 * at the route says so and what the sandbox does instead.
 */

export interface SandboxAnswer {
  readonly status: number
  /** JSON body; absent means no body at all (204, and Courier's other empty answers). */
  readonly body?: unknown
  readonly headers?: Record<string, string>
}

type Json = Record<string, unknown>

/** The error shape Courier documents for every failure: `{message, type}`. https://www.courier.com/docs/reference/lists/put-subscribe/ */
export const courierError = (status: number, message: string, type: string): SandboxAnswer => ({
  status,
  body: { message, type },
})

/** Courier's only published error type (400 Bad Request). Other statuses' types are not published. */
const invalid = (message: string, status = 400) => courierError(status, message, 'invalid_request_error')
const notFound = (what: string) => invalid(`${what} not found`, 404)

/**
 * Schema errors: an error list in `message`. Courier does not publish the wording of
 * `/inbound/segment`'s schema errors; this is the sandbox's own, and the relay reads only the
 * status and `type` (a 400 is dead-lettered whatever it says).
 */
const schemaError = (property: string, problem = `must have required property '${property}'`) =>
  invalid(
    JSON.stringify([{ error: ` ${problem}`, path: problem.startsWith('must have') ? '' : `/${property}` }]),
  )

export const isJsonObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const isObjectOrNull = (value: unknown) => value === undefined || value === null || isJsonObject(value)
const isStringOrNull = (value: unknown) => value === undefined || value === null || typeof value === 'string'

/** A Courier tenant as GET /tenants/{id} returns it (courier-node src/resources/tenants/tenants.ts `Tenant`). */
export interface Tenant {
  id: string
  name: string
  brand_id?: string | null
  default_preferences?: Json | null
  parent_tenant_id?: string | null
  properties?: Json | null
  user_profile?: Json | null
}

/** The fields PUT /tenants/{id} takes (`TenantUpdateParams`); anything else in the body is not kept. */
const TENANT_FIELDS = [
  'brand_id',
  'default_preferences',
  'parent_tenant_id',
  'properties',
  'user_profile',
] as const

/** A user's membership of a tenant (`TenantAssociation`). */
export interface TenantAssociation {
  tenant_id: string
  user_id: string
  type: 'user'
  profile?: Json | null
}

export interface ListSubscription {
  recipientId: string
  created: string
  preferences?: Json | null
}

export interface CourierList {
  id: string
  name: string
  created: string
  updated: string
  /** recipientId → subscription, in subscription order. */
  subscriptions: Map<string, ListSubscription>
}

/** What a Segment track became: Courier's inbound event `Segment-TrackEvent:<event>`, as Courier Studio lists it. */
export interface InboundEvent {
  event: string
  messageId?: string
  userId?: string
  anonymousId?: string
  properties?: unknown
  at: string
}

export interface SandboxState {
  /** userId (or anonymousId) → profile. */
  readonly profiles: Map<string, Json>
  readonly tenants: Map<string, Tenant>
  /** userId → tenantId → membership. */
  readonly memberships: Map<string, Map<string, TenantAssociation>>
  readonly lists: Map<string, CourierList>
  readonly inboundEvents: InboundEvent[]
  /** messageIds /inbound/segment accepted: a repeat is a 409. */
  readonly inboundMessageIds: Set<string>
}

export const createSandboxState = (): SandboxState => ({
  profiles: new Map(),
  tenants: new Map(),
  memberships: new Map(),
  lists: new Map(),
  inboundEvents: [],
  inboundMessageIds: new Set(),
})

export const clearSandboxState = (state: SandboxState) => {
  state.profiles.clear()
  state.tenants.clear()
  state.memberships.clear()
  state.lists.clear()
  state.inboundEvents.length = 0
  state.inboundMessageIds.clear()
}

/** The whole state as plain JSON, for GET /_sandbox/state and for a person reading it. */
export const snapshotSandboxState = (state: SandboxState) => ({
  profiles: Object.fromEntries(state.profiles),
  tenants: Object.fromEntries(state.tenants),
  memberships: Object.fromEntries(
    [...state.memberships].map(([user, tenants]) => [user, [...tenants.values()]]),
  ),
  lists: Object.fromEntries(
    [...state.lists].map(([id, list]) => [
      id,
      {
        id,
        name: list.name,
        created: list.created,
        updated: list.updated,
        subscriptions: [...list.subscriptions.values()],
      },
    ]),
  ),
  inboundEvents: state.inboundEvents,
})

/** The sandbox's settings that shape answers rather than inject faults. */
export interface RouteSettings {
  /**
   * Most recipients one POST|PUT /lists/{id}/subscriptions may carry, or null for no limit.
   * Courier publishes none (checked: the API reference pages for both calls and the SDKs' types,
   * which type `recipients` as an unbounded array); only the 6 MB body limit bounds a call.
   */
  readonly maxRecipientsPerCall: number | null
}

interface Request {
  readonly method: string
  readonly params: readonly string[]
  readonly body: unknown
  readonly now: number
}

type Handler = (state: SandboxState, request: Request, settings: RouteSettings) => SandboxAnswer

const iso = (now: number) => new Date(now).toISOString()
const PAGING_DONE = { more: false }
const NO_CONTENT: SandboxAnswer = { status: 204 }

// ---------------------------------------------------------------------------------------------
// POST /inbound/segment
// ---------------------------------------------------------------------------------------------

/**
 * What each supported event type requires: the fields Courier's Segment guide reads from it
 * (https://www.courier.com/docs/external-integrations/cdp/segment); a stricter sandbox than
 * Courier, which does not publish its refusals here, rather than a kinder one.
 */
const INBOUND_REQUIRED: Readonly<Record<string, readonly string[]>> = {
  identify: ['traits'],
  track: ['event'],
  group: ['traits', 'groupId'],
}

const idOf = (value: unknown): string | undefined =>
  typeof value === 'string' || typeof value === 'number' ? String(value) : undefined

/**
 * POST /inbound/segment takes the raw Segment event and answers 202 `{messageId}`, as the inbound
 * endpoints do (https://www.courier.com/docs/reference/inbound/courier-track-event). A messageId it already accepted gets **409 Conflict**. For
 * /inbound/segment itself this is not published: it is what Courier documents for its Track Event
 * endpoint (POST /inbound/courier), whose reference says of messageId "A required unique identifier that will be
 * used to de-duplicate requests. If not unique, will respond with 409 Conflict status"
 * (https://www.courier.com/docs/reference/inbound/courier-track-event, courier-node
 * src/resources/inbound.ts). "A repeat gets the first answer back" is the behaviour of the
 * `Idempotency-Key` header (handled in courier-sandbox.ts;
 * https://www.courier.com/docs/reference/idempotent-requests), not of messageId; the relay's retry
 * table (409 on /inbound/* = delivered, README.md "Retries and failures") agrees with the 409. The
 * 409's body is not published.
 * Whether a refused event (400, 501) takes its messageId is not published; the sandbox remembers
 * only accepted events, so a corrected resend is not refused as a duplicate.
 */
const inboundSegment: Handler = (state, { body, now }) => {
  if (!isJsonObject(body)) return schemaError('type')
  const type = String(body.type)
  const required = INBOUND_REQUIRED[type]
  // The 501 body is not published; its message is the one the relay has always seen from the sandbox.
  if (required === undefined) return invalid(`Event Type Unsupported: ${type}`, 501)
  if (body.userId === undefined && body.anonymousId === undefined) return schemaError('userId')
  for (const property of required) if (body[property] === undefined) return schemaError(property)
  if ((type === 'identify' || type === 'group') && !isJsonObject(body.traits))
    return schemaError('traits', 'must be object')
  const messageId = typeof body.messageId === 'string' ? body.messageId : undefined
  if (messageId !== undefined && state.inboundMessageIds.has(messageId))
    return invalid(`Conflict: messageId ${messageId} was already received`, 409)
  if (messageId !== undefined) state.inboundMessageIds.add(messageId)

  const user = idOf(body.userId) ?? idOf(body.anonymousId) ?? ''
  if (type === 'identify') {
    // Segment's docs for Courier's destination: "Traits included in the Segment Identify call
    // automatically merge into a user's Courier Profile over time". Merged key by key, as POST
    // /profiles/{id} merges ("leaving any key you omit untouched").
    // https://segment.com/docs/connections/destinations/catalog/courier/
    state.profiles.set(user, { ...state.profiles.get(user), ...(body.traits as Json) })
  } else if (type === 'track') {
    state.inboundEvents.push({
      event: `Segment-TrackEvent:${String(body.event)}`,
      ...(messageId === undefined ? {} : { messageId }),
      ...(idOf(body.userId) === undefined ? {} : { userId: idOf(body.userId) }),
      ...(idOf(body.anonymousId) === undefined ? {} : { anonymousId: idOf(body.anonymousId) }),
      properties: body.properties,
      at: iso(now),
    })
  }
  // group: accepted; the sandbox keeps nothing for it (the relay mirrors tenants with its own calls).
  return { status: 202, body: { messageId: `1-${randomBytes(12).toString('hex')}` } }
}

// ---------------------------------------------------------------------------------------------
// Profiles: https://www.courier.com/docs/reference/profiles/ (courier-node src/resources/profiles/)
// ---------------------------------------------------------------------------------------------

/** GET /profiles/{id}: 200 `{profile}`. 404 for an unknown user is the sandbox's assumption (the body is not published). */
const getProfile: Handler = (state, { params: [id = ''] }) => {
  const profile = state.profiles.get(id)
  return profile === undefined ? notFound(`profile ${id}`) : { status: 200, body: { profile } }
}

/** POST /profiles/{id} `{profile}` merges, creating the profile if absent: 200 `{status: "SUCCESS"}`. */
const mergeProfile: Handler = (state, { params: [id = ''], body }) => {
  if (!isJsonObject(body) || !isJsonObject(body.profile)) return schemaError('profile')
  state.profiles.set(id, { ...state.profiles.get(id), ...body.profile })
  return { status: 200, body: { status: 'SUCCESS' } }
}

/** PUT /profiles/{id} `{profile}` overwrites the profile in full: 200 `{status: "SUCCESS"}`. */
const replaceProfile: Handler = (state, { params: [id = ''], body }) => {
  if (!isJsonObject(body) || !isJsonObject(body.profile)) return schemaError('profile')
  state.profiles.set(id, { ...body.profile })
  return { status: 200, body: { status: 'SUCCESS' } }
}

/**
 * DELETE /profiles/{id}: 204 with no body. The current reference (courier-node's generated
 * `profiles.delete`: no response body, any Accept) says so; an older reference
 * page answered 200 `{status: "SUCCESS"}` (trycourier/docs docs/reference/configs/profiles/delete.ts),
 * so a client must take any 2xx. "Deletes a user's profile and stored contact details. List
 * subscriptions and preferences are separate resources": subscriptions and tenant memberships stay.
 * Deleting a profile that does not exist: the reference is silent; the sandbox answers 204 as well
 * (the end state is the one asked for).
 */
const deleteProfile: Handler = (state, { params: [id = ''] }) => {
  state.profiles.delete(id)
  return NO_CONTENT
}

const listsOf = (state: SandboxState, user: string) =>
  [...state.lists.values()].filter((list) => list.subscriptions.has(user))

/** GET /profiles/{id}/lists: 200 `{results: [{id, name, created, updated, preferences?}], paging}`. */
const getProfileLists: Handler = (state, { params: [id = ''] }) => ({
  status: 200,
  body: {
    results: listsOf(state, id).map((list) => ({
      id: list.id,
      name: list.name,
      created: list.created,
      updated: list.updated,
      ...(list.subscriptions.get(id)?.preferences
        ? { preferences: list.subscriptions.get(id)?.preferences }
        : {}),
    })),
    paging: PAGING_DONE,
  },
})

/**
 * DELETE /profiles/{id}/lists removes every list subscription of the user: 200
 * `{status: "SUCCESS"}`, the body courier-node types (`ListDeleteResponse`). The reference page
 * says "status: 204 OK" with that same body as its example
 * (https://www.courier.com/docs/reference/profiles/remove-subscription/); a 204 cannot carry a
 * body, so the sandbox follows the typed body, and a client must take any 2xx.
 */
const deleteProfileLists: Handler = (state, { params: [id = ''] }) => {
  for (const list of listsOf(state, id)) list.subscriptions.delete(id)
  return { status: 200, body: { status: 'SUCCESS' } }
}

// ---------------------------------------------------------------------------------------------
// Tenants: https://www.courier.com/docs/reference/tenants/put/ (courier-node src/resources/tenants/tenants.ts)
// ---------------------------------------------------------------------------------------------

/** GET /tenants/{id}: 200 `Tenant`; 404 when it does not exist (body not published). */
const getTenant: Handler = (state, { params: [id = ''] }) => {
  const tenant = state.tenants.get(id)
  return tenant === undefined ? notFound(`tenant ${id}`) : { status: 200, body: tenant }
}

/**
 * PUT /tenants/{id} "Creates or replaces a tenant": name is required, and the tenant becomes
 * exactly what the body holds, so a field not sent again (brand_id, parent_tenant_id,
 * default_preferences, properties, user_profile) is gone. 200 with the tenant. Fields outside
 * `TenantUpdateParams` are not kept (what Courier does with them is not published).
 */
const putTenant: Handler = (state, { params: [id = ''], body }) => {
  if (!isJsonObject(body)) return schemaError('name')
  if (typeof body.name !== 'string')
    return body.name === undefined ? schemaError('name') : schemaError('name', 'must be string')
  for (const field of ['properties', 'user_profile', 'default_preferences'] as const)
    if (!isObjectOrNull(body[field])) return schemaError(field, 'must be object')
  for (const field of ['brand_id', 'parent_tenant_id'] as const)
    if (!isStringOrNull(body[field])) return schemaError(field, 'must be string')
  const tenant: Tenant = { id, name: body.name }
  for (const field of TENANT_FIELDS)
    if (body[field] !== undefined) Object.assign(tenant, { [field]: body[field] })
  state.tenants.set(id, tenant)
  return { status: 200, body: tenant }
}

/**
 * DELETE /tenants/{id}: 204. The members' workspace profiles are separate resources. That the
 * tenant's memberships go with it is not published; the sandbox assumes it (nothing in the relay
 * depends on it).
 */
const deleteTenant: Handler = (state, { params: [id = ''] }) => {
  state.tenants.delete(id)
  for (const tenants of state.memberships.values()) tenants.delete(id)
  return NO_CONTENT
}

const userList = (items: TenantAssociation[], url: string) => ({
  status: 200,
  body: { items, has_more: false, type: 'list', url },
})

/** GET /tenants/{id}/users: the tenant's members (`TenantListUsersResponse`). */
const getTenantUsers: Handler = (state, { params: [id = ''] }) =>
  userList(
    [...state.memberships.values()].flatMap((tenants) => (tenants.has(id) ? [tenants.get(id)!] : [])),
    `/tenants/${id}/users`,
  )

// ---------------------------------------------------------------------------------------------
// User tenants: https://www.courier.com/docs/reference/tenants/user-membership/ (every write 204)
// and courier-node src/resources/users/tenants.ts
// ---------------------------------------------------------------------------------------------

const membershipsOf = (state: SandboxState, user: string) => {
  const tenants = state.memberships.get(user) ?? new Map<string, TenantAssociation>()
  state.memberships.set(user, tenants)
  return tenants
}

const addMembership = (state: SandboxState, user: string, tenant: string, profile: unknown) => {
  membershipsOf(state, user).set(tenant, {
    tenant_id: tenant,
    user_id: user,
    type: 'user',
    ...(profile === undefined ? {} : { profile: profile as Json | null }),
  })
}

/**
 * PUT /users/{u}/tenants/{t}: the body is `{profile?: object | null}` (`TenantAddSingleParams`:
 * "optionally with a tenant-specific profile"); 204. The SDKs always send a JSON body; whether
 * Courier accepts a request with none is not published, and the sandbox accepts it as `{}`.
 * Whether the tenant must exist first is not published either; the sandbox does not require it.
 */
const putMembership: Handler = (state, { params: [user = '', tenant = ''], body }) => {
  if (body !== undefined && !isJsonObject(body)) return invalid('body must be an object')
  const profile = isJsonObject(body) ? body.profile : undefined
  if (!isObjectOrNull(profile)) return schemaError('profile', 'must be object')
  addMembership(state, user, tenant, profile)
  return NO_CONTENT
}

/** PUT /users/{u}/tenants `{tenants: [{tenant_id, profile?}]}` adds several memberships: 204. */
const putMemberships: Handler = (state, { params: [user = ''], body }) => {
  if (!isJsonObject(body) || !Array.isArray(body.tenants)) return schemaError('tenants')
  for (const item of body.tenants) {
    if (!isJsonObject(item) || typeof item.tenant_id !== 'string') return schemaError('tenant_id')
    if (!isObjectOrNull(item.profile)) return schemaError('profile', 'must be object')
  }
  for (const item of body.tenants as Json[]) addMembership(state, user, String(item.tenant_id), item.profile)
  return NO_CONTENT
}

/** GET /users/{u}/tenants: 200 `TenantListResponse` (`{items, has_more, type: "list", url}`). */
const getMemberships: Handler = (state, { params: [user = ''] }) =>
  userList([...(state.memberships.get(user)?.values() ?? [])], `/users/${user}/tenants`)

/** DELETE /users/{u}/tenants/{t}: 204. */
const deleteMembership: Handler = (state, { params: [user = '', tenant = ''] }) => {
  state.memberships.get(user)?.delete(tenant)
  return NO_CONTENT
}

/** DELETE /users/{u}/tenants removes the user from every tenant: 204. */
const deleteMemberships: Handler = (state, { params: [user = ''] }) => {
  state.memberships.delete(user)
  return NO_CONTENT
}

// ---------------------------------------------------------------------------------------------
// Lists: https://www.courier.com/docs/reference/lists/ (courier-node src/resources/lists/). The
// subscription writes answer "status: 204 Successfully subscribed" or "status: 400 Bad Request"
// `{message, type: "invalid_request_error"}`: https://www.courier.com/docs/reference/lists/put-subscribe/
// ---------------------------------------------------------------------------------------------

/** A list, created when missing: every subscription call "If the list does not exist, it will be automatically created". */
const listFor = (state: SandboxState, id: string, now: number) => {
  let list = state.lists.get(id)
  if (list === undefined) {
    // The name an auto-created list gets is not published; the sandbox uses its id.
    list = { id, name: id, created: iso(now), updated: iso(now), subscriptions: new Map() }
    state.lists.set(id, list)
  }
  return list
}

/** GET /lists/{id}: 200 `{id, name, created, updated}`; 404 when missing (body not published). */
const getList: Handler = (state, { params: [id = ''] }) => {
  const list = state.lists.get(id)
  return list === undefined
    ? notFound(`list ${id}`)
    : { status: 200, body: { id, name: list.name, created: list.created, updated: list.updated } }
}

/** PUT /lists/{id} `{name, preferences?}` "Creates or replaces a list": 204. Subscribers are kept. */
const putList: Handler = (state, { params: [id = ''], body, now }) => {
  if (!isJsonObject(body) || typeof body.name !== 'string') return schemaError('name')
  const list = listFor(state, id, now)
  list.name = body.name
  list.updated = iso(now)
  return NO_CONTENT
}

/** DELETE /lists/{id}: 204. */
const deleteList: Handler = (state, { params: [id = ''] }) => {
  state.lists.delete(id)
  return NO_CONTENT
}

/** `recipients: [{recipientId, preferences?}]` (`PutSubscriptionsRecipient`), checked whole before anything changes. */
const recipientsOf = (body: unknown, settings: RouteSettings): { ok: Json[] } | { error: SandboxAnswer } => {
  if (!isJsonObject(body) || !Array.isArray(body.recipients)) return { error: schemaError('recipients') }
  for (const [index, recipient] of body.recipients.entries()) {
    if (!isJsonObject(recipient) || typeof recipient.recipientId !== 'string' || recipient.recipientId === '')
      return { error: schemaError(`recipients/${index}/recipientId`) }
    if (!isObjectOrNull(recipient.preferences))
      return { error: schemaError(`recipients/${index}/preferences`, 'must be object') }
  }
  if (settings.maxRecipientsPerCall !== null && body.recipients.length > settings.maxRecipientsPerCall)
    return {
      error: invalid(
        `recipients: at most ${settings.maxRecipientsPerCall} per call (a sandbox setting: Courier publishes no maximum)`,
      ),
    }
  return { ok: body.recipients as Json[] }
}

const subscribe = (list: CourierList, recipient: Json, now: number) => {
  const id = String(recipient.recipientId)
  const existing = list.subscriptions.get(id)
  list.subscriptions.set(id, {
    recipientId: id,
    created: existing?.created ?? iso(now),
    ...(recipient.preferences === undefined ? {} : { preferences: recipient.preferences as Json | null }),
  })
}

/** POST /lists/{id}/subscriptions "Subscribes additional users to the list, without modifying existing subscriptions": 204. */
const addSubscriptions: Handler = (state, { params: [id = ''], body, now }, settings) => {
  const recipients = recipientsOf(body, settings)
  if ('error' in recipients) return recipients.error
  const list = listFor(state, id, now)
  for (const recipient of recipients.ok)
    if (!list.subscriptions.has(String(recipient.recipientId))) subscribe(list, recipient, now)
  return NO_CONTENT
}

/** PUT /lists/{id}/subscriptions "Subscribes the users to the list, overwriting existing subscriptions": 204. */
const replaceSubscriptions: Handler = (state, { params: [id = ''], body, now }, settings) => {
  const recipients = recipientsOf(body, settings)
  if ('error' in recipients) return recipients.error
  const list = listFor(state, id, now)
  list.subscriptions.clear()
  for (const recipient of recipients.ok) subscribe(list, recipient, now)
  return NO_CONTENT
}

/** PUT /lists/{id}/subscriptions/{userId} `{preferences?}` subscribes one user: 204. */
const putSubscription: Handler = (state, { params: [id = '', user = ''], body, now }) => {
  if (body !== undefined && !isJsonObject(body)) return invalid('body must be an object')
  const preferences = isJsonObject(body) ? body.preferences : undefined
  if (!isObjectOrNull(preferences)) return schemaError('preferences', 'must be object')
  subscribe(listFor(state, id, now), { recipientId: user, preferences }, now)
  return NO_CONTENT
}

/**
 * DELETE /lists/{id}/subscriptions/{userId}: 204. For a user (or list) that has no subscription
 * the reference is silent; the sandbox answers 204 (the end state is the one asked for).
 */
const deleteSubscription: Handler = (state, { params: [id = '', user = ''] }) => {
  state.lists.get(id)?.subscriptions.delete(user)
  return NO_CONTENT
}

/** GET /lists/{id}/subscriptions: 200 `{items: [{recipientId, created, preferences?}], paging}`. */
const getSubscriptions: Handler = (state, { params: [id = ''] }) => {
  const list = state.lists.get(id)
  if (list === undefined) return notFound(`list ${id}`)
  return { status: 200, body: { items: [...list.subscriptions.values()], paging: PAGING_DONE } }
}

/**
 * `POST /debug`: the call Courier's own Segment (Actions) destination makes to test an API key
 * (segmentio/action-destinations, packages/destination-actions/src/destinations/courier/index.ts,
 * testAuthentication). What Courier answers beyond a success is not published: 200 and an empty object.
 */
const debug: Handler = () => ({ status: 200, body: {} })

// ---------------------------------------------------------------------------------------------

const SEGMENT = '([^/]+)'
const route = (method: string, path: string, handler: Handler) => ({
  method,
  pattern: new RegExp(`^${path.replaceAll('{}', SEGMENT)}$`),
  handler,
})

/** Courier's API as the sandbox knows it, as data: method, path, handler. */
export const COURIER_ROUTES = [
  route('POST', '/inbound/segment', inboundSegment),
  route('POST', '/debug', debug),
  route('GET', '/profiles/{}', getProfile),
  route('POST', '/profiles/{}', mergeProfile),
  route('PUT', '/profiles/{}', replaceProfile),
  route('DELETE', '/profiles/{}', deleteProfile),
  route('GET', '/profiles/{}/lists', getProfileLists),
  route('DELETE', '/profiles/{}/lists', deleteProfileLists),
  route('GET', '/tenants/{}', getTenant),
  route('PUT', '/tenants/{}', putTenant),
  route('DELETE', '/tenants/{}', deleteTenant),
  route('GET', '/tenants/{}/users', getTenantUsers),
  route('GET', '/users/{}/tenants', getMemberships),
  route('PUT', '/users/{}/tenants', putMemberships),
  route('DELETE', '/users/{}/tenants', deleteMemberships),
  route('PUT', '/users/{}/tenants/{}', putMembership),
  route('DELETE', '/users/{}/tenants/{}', deleteMembership),
  route('GET', '/lists/{}', getList),
  route('PUT', '/lists/{}', putList),
  route('DELETE', '/lists/{}', deleteList),
  route('GET', '/lists/{}/subscriptions', getSubscriptions),
  route('POST', '/lists/{}/subscriptions', addSubscriptions),
  route('PUT', '/lists/{}/subscriptions', replaceSubscriptions),
  route('PUT', '/lists/{}/subscriptions/{}', putSubscription),
  route('DELETE', '/lists/{}/subscriptions/{}', deleteSubscription),
] as const

/**
 * A list write in the sense of Courier's published rate limit: "POST requests to the
 * subscriptions endpoint are rate-limited to 20 creations per minute. PUT requests to the Lists
 * API are rate-limited to 20 creations per minute. GET requests to the Lists API are not
 * rate-limited." (https://www.courier.com/docs/reference/rate-limits). DELETE is not mentioned;
 * the sandbox leaves it unlimited. "PUT requests to the Lists API" is read as every PUT under
 * /lists/, the single-user subscribe included (the stricter reading).
 */
export const isListWrite = (method: string, path: string) =>
  path.startsWith('/lists/') &&
  (method === 'PUT' || (method === 'POST' && /^\/lists\/[^/]+\/subscriptions$/.test(path)))

/** Writes other than the inbound endpoints: where Courier's 409 means a concurrent-modification conflict. */
export const isConflictableWrite = (method: string, path: string) =>
  method !== 'GET' && method !== 'HEAD' && !path.startsWith('/inbound/')

/** The route for a request, with its decoded path parameters, or undefined (Courier's 404). */
export const findRoute = (method: string, rawPath: string) => {
  for (const candidate of COURIER_ROUTES) {
    if (candidate.method !== method) continue
    const match = rawPath.match(candidate.pattern)
    if (match) return { handler: candidate.handler, params: match.slice(1).map(decodeURIComponent) }
  }
  return undefined
}

export const answerRoute = (
  state: SandboxState,
  found: NonNullable<ReturnType<typeof findRoute>>,
  request: { method: string; body: unknown; now: number },
  settings: RouteSettings,
): SandboxAnswer => found.handler(state, { ...request, params: found.params }, settings)

/** A route Courier does not have: 404; its body is not published, so the sandbox's own wording. */
export const routeNotFound = (): SandboxAnswer => invalid('Not Found', 404)
