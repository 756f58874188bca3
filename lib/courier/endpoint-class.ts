/**
 * Courier's API in the groups its rate limits are published for, so each group can be paced on
 * its own: a slow or limited group (list writes: 20 requests a minute) must not hold back the
 * others. https://www.courier.com/docs/reference/rate-limits
 *
 * - `inbound`: POST /inbound/segment (no published limit)
 * - `profiles`: /profiles/{id}… (not rate limited per the docs)
 * - `tenants`: /tenants/{id} and the memberships under /users/{id}/tenants
 * - `lists`: /lists/{id}… (Lists POST subscriptions and PUT: 20 requests/minute)
 */
export const ENDPOINT_CLASSES = ['inbound', 'profiles', 'tenants', 'lists'] as const
export type EndpointClass = (typeof ENDPOINT_CLASSES)[number]

/** Pure: the class of a request path relative to the Courier base URL (`/inbound/segment` → inbound). */
export const endpointClassOf = (path: string): EndpointClass => {
  const first = path.split('/')[1] ?? ''
  if (first === 'lists') return 'lists'
  if (first === 'tenants' || first === 'users') return 'tenants'
  if (first === 'profiles') return 'profiles'
  return 'inbound'
}
