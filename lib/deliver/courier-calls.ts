import type { Config } from '../config.ts'
import type { CourierClient, SendResult } from '../courier/client.ts'
import { CourierError } from '../courier/courier-error.ts'
import { endpointClassOf } from '../courier/endpoint-class.ts'
import { type Outcome, readCourierErrorBody } from '../courier/outcome.ts'
import { type NoTurn, outcomeOfCall, takeTurn } from '../courier/paced-call.ts'
import { type CourierRequest, routeEvent } from '../courier/routing.ts'
import { mergeTenant } from '../courier/tenant.ts'
import type { SegmentEvent } from '../segment/event.ts'
import type { Identities } from '../segment/identity.ts'
import { pathForLog, textForLog } from '../user-key.ts'
import type { DeliverInstance } from './instance.ts'

/**
 * The Courier calls of one event, in order, each in its endpoint class's turn; a tenant upsert as
 * a read-merge-write. The answer is what the event's record becomes: sent, a failure with
 * Courier's error, or not sent (held back by a 429 elsewhere in the batch, or late).
 */

export interface CallDeps {
  readonly config: Config
  readonly courier: CourierClient
  readonly instance: DeliverInstance
}

export interface Sent {
  readonly outcome: Outcome
  readonly error: CourierError | undefined
  /** After a 429: the wait the class's cut rate implies (Pacer.holdBackSeconds). */
  readonly holdBackSeconds?: number | undefined
}

/** A call not made: the batch was rate-limited while it waited its turn, or the deadline came first. */
export interface Unsent {
  readonly unsent: NoTurn
}

export interface Skipped {
  readonly skipped: string
}

const DELIVERED: Sent = { outcome: { kind: 'delivered', status: 202 }, error: undefined }

/** A failed answer, its reason naming the call when it was not the inbound one (a DLQ reader needs to know which). */
const failure = (request: CourierRequest, result: SendResult, holdBackSeconds?: number): Sent => {
  // Reasons are logged and kept with dead letters: paths and quoted ids keyed (lib/user-key.ts).
  const { outcome } = result
  const said = 'reason' in outcome ? { ...outcome, reason: textForLog(outcome.reason) } : outcome
  const named =
    request.path === '/inbound/segment' || !('reason' in said)
      ? said
      : { ...said, reason: `${said.reason} (${request.method} ${pathForLog(request.path)})` }
  const { message, type } = readCourierErrorBody(result.body) ?? {}
  return {
    outcome: named,
    holdBackSeconds,
    error:
      named.kind === 'delivered'
        ? undefined
        : new CourierError(named, {
            courierMessage: message === undefined ? undefined : textForLog(message),
            courierType: type,
            cause: result.cause,
          }),
  }
}

/** Which failure of several decides the record: one that says "later" wins over one that says "never". */
const SEVERITY: Readonly<Record<Outcome['kind'], number>> = {
  'rate-limited': 0,
  transient: 1,
  auth: 2,
  permanent: 3,
  delivered: 4,
}

/** Sends `call` in its endpoint class's turn: Courier's answer, or why it was not sent. */
const callInTurn = async (
  deps: CallDeps,
  call: CourierRequest,
  deadline: number,
  held: AbortSignal | undefined,
): Promise<{ readonly result: SendResult; readonly holdBackSeconds: number | undefined } | Unsent> => {
  const pacer = deps.instance.pacerFor(endpointClassOf(call.path))
  const turn = await takeTurn(deps.courier, pacer, {
    deadline,
    held,
    timeoutMs: deps.config.courier.timeoutMs,
  })
  if (typeof turn === 'string') return { unsent: turn }
  const result = await turn.send(call)
  return { result, holdBackSeconds: pacer.holdBackSeconds() }
}

/** Sends `call` (what `request` routed to) and reads its answer. */
const sendCall = async (
  deps: CallDeps,
  call: CourierRequest,
  request: CourierRequest,
  deadline: number,
  held: AbortSignal | undefined,
): Promise<Sent | Unsent> => {
  const sent = await callInTurn(deps, call, deadline, held)
  if ('unsent' in sent) return sent
  return outcomeOfCall(request, sent.result).kind === 'delivered'
    ? DELIVERED
    : failure(call, sent.result, sent.holdBackSeconds)
}

/**
 * One routed call. A tenant upsert is a read-modify-write (CourierRequest.tenantMerge): GET, merge,
 * PUT, one at a time per tenant in this instance; a 404 on the GET means there is no tenant yet. A
 * 409 on the PUT (someone else changed the tenant meanwhile) is transient, so the record comes back
 * and the next attempt reads again.
 */
const sendStep = async (
  deps: CallDeps,
  request: CourierRequest,
  event: SegmentEvent,
  rawEvent: string,
  deadline: number,
  held: AbortSignal | undefined,
): Promise<Sent | Unsent> => {
  const { tenantMerge } = request
  if (tenantMerge === undefined) {
    // The event itself goes out as the exact text Segment sent (see CourierRequest.rawBody).
    const call = request.body === event ? { ...request, rawBody: rawEvent } : request
    return sendCall(deps, call, request, deadline, held)
  }
  return deps.instance.oneTenantWriteAtATime(request.path, async () => {
    const read: CourierRequest = { method: 'GET', path: request.path }
    const sent = await callInTurn(deps, read, deadline, held)
    if ('unsent' in sent) return sent
    const current = sent.result
    if (current.status !== 404 && current.outcome.kind !== 'delivered') {
      return failure(read, current, sent.holdBackSeconds)
    }
    const body = mergeTenant(
      current.status === 404 ? undefined : current.body,
      tenantMerge.traits,
      tenantMerge.fallbackName,
    )
    return sendCall(deps, { method: 'PUT', path: request.path, body }, request, deadline, undefined)
  })
}

/**
 * Sends every Courier request the event routes to, in order. The first one not delivered decides,
 * except for the steps of a deletion: each is attempted whatever the others answered, and the
 * record is done when all are (else the most retryable failure decides: a retry repeats only
 * idempotent deletes).
 */
export const sendEvent = async (
  deps: CallDeps,
  event: SegmentEvent,
  ids: Identities,
  rawEvent: string,
  deadline: number,
  held: AbortSignal,
): Promise<Sent | Unsent | Skipped> => {
  const route = routeEvent(event, { groupTenants: deps.config.courier.groupTenants }, ids)
  if ('skip' in route) return { skipped: route.skip }
  const failures: Sent[] = []
  for (const [index, request] of route.entries()) {
    // Only the event's first call gives way to a 429 elsewhere in the batch: once one call went
    // out the event is half delivered, and finishing it now is what keeps its calls in order.
    const sent = await sendStep(deps, request, event, rawEvent, deadline, index === 0 ? held : undefined)
    if ('unsent' in sent) return sent
    if (sent.outcome.kind === 'delivered') continue
    if (request.deletion !== true) return sent
    failures.push(sent)
  }
  if (failures.length === 0) return DELIVERED
  return failures.reduce((worst, next) =>
    SEVERITY[next.outcome.kind] < SEVERITY[worst.outcome.kind] ? next : worst,
  )
}
