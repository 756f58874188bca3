import { RelayError } from './relay-error.ts'

/** A setting is missing or malformed. Raised at cold start so a bad deploy fails loudly and at once. */
export class ConfigError extends RelayError {
  readonly variable: string

  constructor(variable: string, message: string, options?: ErrorOptions) {
    super(`${variable}: ${message}`, options)
    this.variable = variable
  }
}

export const isConfigError = (error: unknown): error is ConfigError => error instanceof ConfigError
