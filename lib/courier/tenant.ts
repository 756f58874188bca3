/**
 * Mirroring a Segment group into a Courier tenant without destroying anything Courier holds.
 *
 * `PUT /tenants/{tenant_id}` creates *or replaces* the whole tenant: a field left out of the body is
 * gone (name is required; brand_id, parent_tenant_id, default_preferences, properties and
 * user_profile are optional). https://www.courier.com/docs/reference/tenants/put/ and courier-node
 * `src/resources/tenants/tenants.ts` (TenantUpdateParams, Tenant). So the relay reads the tenant
 * (`GET /tenants/{tenant_id}`), merges the group's traits into its properties, and writes every
 * field back. Pure: the worker does the GET and the PUT.
 */

/** The fields `PUT /tenants/{id}` takes (TenantUpdateParams): everything else in a GET answer (its `id`) is not sent back. */
export const TENANT_FIELDS = [
  'name',
  'brand_id',
  'parent_tenant_id',
  'default_preferences',
  'properties',
  'user_profile',
] as const

export type TenantBody = { name: string } & Record<string, unknown>

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** Segment's conventional group name (`traits.name`) when it is a usable string. */
export const nameFromTraits = (traits: Record<string, unknown>): string | undefined =>
  typeof traits.name === 'string' && traits.name !== '' ? traits.name : undefined

/**
 * The tenant to PUT: `current` (the GET answer, or undefined when Courier has none) with `traits`
 * merged into its properties, new values winning. Every other field Courier holds is kept as it
 * was. The name is `traits.name` when the group has one, else the current name, else (a new
 * tenant) `fallbackName`, the groupId.
 */
export const mergeTenant = (
  current: unknown,
  traits: Record<string, unknown>,
  fallbackName: string,
): TenantBody => {
  const kept: Record<string, unknown> = {}
  if (isRecord(current)) {
    for (const field of TENANT_FIELDS) {
      if (current[field] !== undefined) kept[field] = current[field]
    }
  }
  const currentName = typeof kept.name === 'string' && kept.name !== '' ? kept.name : undefined
  const properties = isRecord(kept.properties) ? kept.properties : {}
  return {
    ...kept,
    name: nameFromTraits(traits) ?? currentName ?? fallbackName,
    properties: { ...properties, ...traits },
  }
}
