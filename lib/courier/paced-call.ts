import type { CourierClient, SendResult } from './client.ts'
import type { Outcome } from './outcome.ts'
import type { Pacer } from './pacer.ts'
import type { CourierRequest } from './routing.ts'

/**
 * One Courier call in its turn: the pacer of its endpoint class hands out the start, and Courier's
 * answer goes back to it to move the learnt rate. Taking the turn and sending are apart, so a
 * caller may take its turn before a lease and send while holding it.
 */

/** Why a turn was not taken: another call met a 429 (`held`), or the deadline came first (`late`). */
export type NoTurn = 'held' | 'late'

export interface Turn {
  /** Sends `request`, no longer than `deadline` (epoch ms), and reports the answer to the pacer. */
  readonly send: (request: CourierRequest) => Promise<SendResult>
}

export interface TurnOptions {
  /** Epoch ms: no wait and no call past it. */
  readonly deadline: number
  /** Aborted when the batch was rate-limited: a call still waiting is not sent into the refusal. */
  readonly held?: AbortSignal | undefined
  /** COURIER_TIMEOUT_MS: a call the deadline cuts shorter may time out for that reason alone. */
  readonly timeoutMs: number
}

/**
 * Waits for the pacer's next start (none when `pacer` is undefined: a call Courier does not rate
 * limit), giving up at the deadline or when `held` aborts.
 */
export const takeTurn = async (
  courier: CourierClient,
  pacer: Pacer | undefined,
  options: TurnOptions,
): Promise<Turn | NoTurn> => {
  const { deadline, held } = options
  const timeout = AbortSignal.timeout(Math.max(0, deadline - Date.now()))
  const slot =
    pacer === undefined
      ? { sentAt: Date.now(), saturated: false }
      : await pacer.acquire(held === undefined ? timeout : AbortSignal.any([held, timeout]))
  if (slot === undefined || Date.now() >= deadline) return held?.aborted === true ? 'held' : 'late'
  return {
    send: async (request) => {
      // A call the invocation's deadline cuts shorter than COURIER_TIMEOUT_MS may time out for
      // that reason alone: such a timeout says nothing about Courier, so it does not move the rate.
      const cutShort = deadline - Date.now() < options.timeoutMs
      const result = await courier.send(request, { deadline })
      if (!(cutShort && result.outcome.kind === 'transient' && result.status === undefined)) {
        pacer?.report(slot, result.outcome)
      }
      return result
    },
  }
}

/**
 * Courier's answer as the outcome of the call: removing what is already gone (a 404 on a
 * `deletion` step) is done.
 */
export const outcomeOfCall = (request: CourierRequest, result: SendResult): Outcome =>
  request.deletion === true && result.status === 404 ? { kind: 'delivered', status: 404 } : result.outcome
