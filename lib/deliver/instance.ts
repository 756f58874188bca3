import type { EndpointClass } from '../courier/endpoint-class.ts'
import type { Pacer, PacerFor } from '../courier/pacer.ts'

/**
 * What one deliver instance keeps between its invocations, in one object the handler creates at
 * cold start: the pacers (the rate learnt from Courier's answers carries over) and the tenant
 * writes in flight.
 */

export interface DeliverInstance {
  /** The pacer of each endpoint class. */
  readonly pacerFor: PacerFor
  /** The pacers in use, for the CourierRate metric. */
  readonly pacers: () => readonly (readonly [EndpointClass, Pacer])[]
  /** Runs `work` after every earlier work of the same tenant path in this instance has settled. */
  readonly oneTenantWriteAtATime: <T>(path: string, work: () => Promise<T>) => Promise<T>
}

/**
 * Tenant read-modify-writes, one per tenant at a time. Users of one group sit in different message
 * groups and are delivered side by side; two GET-merge-PUTs of one tenant interleaved would each
 * write back what the other had not seen, and the later PUT would drop the other's traits.
 * Courier offers no conditional write to prevent it across instances (its 409, when it answers
 * one, is retried); inside an instance this queue does.
 */
const createTenantQueue = (): DeliverInstance['oneTenantWriteAtATime'] => {
  const writes = new Map<string, Promise<unknown>>()
  return async (path, work) => {
    const before = writes.get(path) ?? Promise.resolve()
    const mine = before.then(work, work)
    const settled = mine.catch(() => undefined)
    writes.set(path, settled)
    try {
      return await mine
    } finally {
      if (writes.get(path) === settled) writes.delete(path)
    }
  }
}

export const createDeliverInstance = (
  pacerFor: PacerFor,
  pacers: DeliverInstance['pacers'] = () => [],
): DeliverInstance => ({ pacerFor, pacers, oneTenantWriteAtATime: createTenantQueue() })
