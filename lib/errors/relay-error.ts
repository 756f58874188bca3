/** Base class of every error the relay raises on purpose, so callers can tell ours from the unknown. */
export class RelayError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
  }
}

export const isRelayError = (error: unknown): error is RelayError => error instanceof RelayError
