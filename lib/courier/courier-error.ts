import { RelayError } from '../errors/relay-error.ts'
import type { FailedOutcome } from './outcome.ts'

/**
 * Courier did not take an event, as an error the worker can log, put in the DLQ with its reason,
 * or throw. The Courier client itself never throws it: `send` returns the Outcome, and the
 * worker decides (README.md, "Retries and failures"). `status` is undefined when no HTTP
 * answer arrived (timeout, reset, network); `courierMessage`/`courierType` are Courier's error
 * body `{"message", "type"}` when it sent one.
 */
export class CourierError extends RelayError {
  readonly status: number | undefined
  readonly courierMessage: string | undefined
  readonly courierType: string | undefined
  readonly outcome: FailedOutcome

  constructor(
    outcome: FailedOutcome,
    options: ErrorOptions & { courierMessage?: string | undefined; courierType?: string | undefined } = {},
  ) {
    super(courierErrorMessage(outcome), options.cause === undefined ? undefined : { cause: options.cause })
    this.status = outcome.status
    this.courierMessage = options.courierMessage
    this.courierType = options.courierType
    this.outcome = outcome
  }
}

/** e.g. "Courier answered 501 (permanent): Event Type Unsupported: page", "no answer from Courier (transient): timeout after 150 ms". */
const courierErrorMessage = (outcome: FailedOutcome): string => {
  const answer =
    outcome.status === undefined ? 'no answer from Courier' : `Courier answered ${outcome.status}`
  const detail =
    outcome.kind !== 'rate-limited'
      ? outcome.reason
      : outcome.retryAfterSeconds === undefined
        ? 'rate limited'
        : `rate limited, retry after ${outcome.retryAfterSeconds} s`
  return `${answer} (${outcome.kind}): ${detail}`
}

export const isCourierError = (error: unknown): error is CourierError => error instanceof CourierError
