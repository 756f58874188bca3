import { RelayError } from './relay-error.ts'

/**
 * An answer the ingest function gives on purpose. Its `statusCode` and message become the
 * JSON body `{"error": message, ...details}`; Segment retries 408, 429 and 5xx and discards
 * other 4xx, so the status is part of the contract.
 * https://segment.com/docs/connections/destinations/#retries-between-segment-and-destinations
 */
export class HttpError extends RelayError {
  readonly statusCode: number
  readonly details: Readonly<Record<string, unknown>>

  constructor(
    statusCode: number,
    message: string,
    options?: ErrorOptions & { details?: Readonly<Record<string, unknown>> },
  ) {
    super(message, options)
    this.statusCode = statusCode
    this.details = options?.details ?? {}
  }
}

export const isHttpError = (error: unknown): error is HttpError => error instanceof HttpError
