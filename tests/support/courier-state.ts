import type { CourierSandbox, ReceivedRequest } from '../../lib/local/courier-sandbox.ts'
import { isJsonObject, isListWrite } from '../../lib/local/sandbox-courier.ts'
import { SANDBOX_TOKEN } from './relay.ts'

/**
 * The Courier sandbox's state and log read in the terms a test asserts on (`user tenant`
 * memberships, `list user` subscriptions, list writes), and state put in place through Courier's
 * own API before a test acts, as a person would with curl.
 */

/** Every tenant membership as `${userId} ${tenantId}`. */
export const memberships = (sandbox: CourierSandbox): Set<string> =>
  new Set(
    [...sandbox.state.memberships].flatMap(([user, tenants]) =>
      [...tenants.keys()].map((t) => `${user} ${t}`),
    ),
  )

/** Every list subscription as `${listId} ${userId}`. */
export const subscriptions = (sandbox: CourierSandbox): Set<string> =>
  new Set(
    [...sandbox.state.lists.values()].flatMap((list) =>
      [...list.subscriptions.keys()].map((user) => `${list.id} ${user}`),
    ),
  )

/** A tenant as it was written (its fields without the id Courier answers with), or undefined. */
export const tenant = (sandbox: CourierSandbox, id: string): Record<string, unknown> | undefined => {
  const found = sandbox.state.tenants.get(id)
  if (found === undefined) return undefined
  const { id: _id, ...fields } = found
  return fields
}

/** The list writes Courier took or refused (a 429 under its limit), in order, with their recipients. */
export const listWrites = (received: readonly ReceivedRequest[]) =>
  received
    .filter((r) => isListWrite(r.method, r.path))
    .map((r) => ({
      status: r.status,
      recipients: isJsonObject(r.body) && Array.isArray(r.body.recipients) ? r.body.recipients.length : 1,
    }))

/** Makes the next `method path` call fail once with `status`, before it touches any state. */
export const failOnce = (sandbox: CourierSandbox, method: string, path: string, status: number) =>
  sandbox.setFaults({
    failNext: [
      ...sandbox.faults.failNext,
      { method, path, status, body: { message: `failed once (${status})`, type: 'api_error' } },
    ],
  })

/**
 * Puts state in place through Courier's API (`[method, path, body?]` each, answered 2xx or it
 * throws), then empties the log, so a test's log starts without them (list writes among them
 * still count in the sandbox's 60 s window, as they would at Courier).
 */
export const seedCourier = async (
  sandbox: CourierSandbox,
  calls: readonly (readonly [method: string, path: string, body?: unknown])[],
) => {
  for (const [method, path, body] of calls) {
    const response = await fetch(`${sandbox.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${SANDBOX_TOKEN}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    if (!response.ok)
      throw new Error(`seeding ${method} ${path}: ${response.status} ${await response.text()}`)
  }
  sandbox.received.length = 0
}
