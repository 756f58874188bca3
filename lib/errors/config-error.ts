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

/**
 * What settings validation throws: the ConfigError itself for one mistake, an AggregateError of
 * them for several, its message one line per mistake.
 */
export const configFailure = (mistakes: readonly ConfigError[]): Error =>
  mistakes.length === 1
    ? (mistakes[0] as ConfigError)
    : new AggregateError(mistakes, mistakes.map((mistake) => mistake.message).join('\n'))

/** The setting mistakes `error` stands for (see configFailure), or undefined when it is anything else. */
export const configMistakes = (error: unknown): readonly ConfigError[] | undefined => {
  if (isConfigError(error)) return [error]
  if (error instanceof AggregateError && error.errors.length > 0 && error.errors.every(isConfigError))
    return error.errors
  return undefined
}
