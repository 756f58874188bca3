import { createServer } from 'node:net'
import {
  type Config,
  courierAuthToken,
  type Env,
  type LocalConfig,
  parseConfig,
  parseLocalConfig,
} from '../config.ts'
import { ConfigError, configFailure, configMistakes } from '../errors/config-error.ts'
import { LOOPBACK } from './loopback.ts'

/**
 * What `npm start` checks before anything listens: its own settings, the relay's, the Courier it
 * talks to, and its ports. Every mistake is collected in one pass and thrown together (a
 * ConfigError, or an AggregateError of them), so a person fixes them in one go rather than one
 * per restart. Kept apart from start.ts so it runs in process, without starting anything.
 */

export const LOCAL_QUEUE_NAME = 'segment-courier-relay-events'

export type Courier = { readonly kind: 'sandbox' } | { readonly kind: 'configured'; readonly label: string }

export interface ValidatedStart {
  readonly local: LocalConfig
  readonly config: Config
  readonly courier: Courier
}

/** Runs `parse`, setting its mistakes aside in `mistakes`: undefined when it found any. */
const collecting = <T>(mistakes: ConfigError[], parse: () => T): T | undefined => {
  try {
    return parse()
  } catch (error) {
    const found = configMistakes(error)
    if (found === undefined) throw error
    mistakes.push(...found)
    return undefined
  }
}

/**
 * Which Courier the relay talks to, from the environment. COURIER_BASE_URL names a server that
 * expects a Courier API key like the real one; without a key every request would be refused
 * (401) and retried for ever, so that mistake is named at start instead.
 */
const chooseCourier = (env: Env, config: Config): Courier => {
  const hasToken = config.courier.authToken !== undefined
  if (env.COURIER_BASE_URL?.trim()) {
    if (!hasToken) {
      throw new ConfigError(
        'COURIER_AUTH_TOKEN',
        `is required with COURIER_BASE_URL=${config.courier.baseUrl} (the API key that server expects); unset COURIER_BASE_URL to use the local Courier sandbox`,
      )
    }
    return { kind: 'configured', label: `${config.courier.baseUrl} (COURIER_BASE_URL)` }
  }
  if (hasToken) return { kind: 'configured', label: `the real Courier API at ${config.courier.baseUrl}` }
  return { kind: 'sandbox' }
}

/**
 * Every setting the relay and its functions read, checked before anything listens; throws every
 * mistake at once. The Courier choice is judged on the settings that are right: with
 * COURIER_BASE_URL itself wrong there is no server to need a key for yet.
 */
export const validateStart = (env: Env): ValidatedStart => {
  const mistakes: ConfigError[] = []
  const local = collecting(mistakes, () => parseLocalConfig(env))
  // The functions are given these queue URLs at start; any well-formed URL stands in for them here.
  const suffix = (local?.queueType ?? 'fifo') === 'fifo' ? '.fifo' : ''
  const relayEnv = {
    ...env,
    QUEUE_URL: `http://${LOOPBACK}/${LOCAL_QUEUE_NAME}${suffix}`,
    DLQ_URL: `http://${LOOPBACK}/${LOCAL_QUEUE_NAME}-dlq${suffix}`,
    AUDIENCE_QUEUE_URL: `http://${LOOPBACK}/${LOCAL_QUEUE_NAME}-audiences`,
  }
  const relay = collecting(mistakes, () => parseConfig(relayEnv))
  // Judged on the variables that are right: the relay's settings with its wrong ones unset.
  const wrong = new Set(mistakes.map((mistake) => mistake.variable))
  const right = Object.fromEntries(Object.entries(relayEnv).filter(([name]) => !wrong.has(name)))
  const config = relay ?? collecting([], () => parseConfig(right))
  const courier = config && collecting(mistakes, () => chooseCourier(right, config))
  if (config && courier?.kind === 'configured') collecting(mistakes, () => courierAuthToken(config))
  if (mistakes.length > 0 || !local || !config || !courier) throw configFailure(mistakes)
  return { local, config, courier }
}

/** A listen failure, named by the variable that moves the port. */
export const portProblem = (variable: string, port: number, error: unknown): unknown => {
  const code = (error as { code?: string }).code
  if (code === 'EADDRINUSE') {
    return new ConfigError(
      variable,
      `port ${port} on ${LOOPBACK} is already in use by another program; set ${variable} to a free port (0 picks one), e.g. ${variable}=${port + 10} npm start`,
    )
  }
  if (code === 'EACCES') {
    return new ConfigError(
      variable,
      `port ${port} needs privileges to listen on; set ${variable} to a port above 1023`,
    )
  }
  return error
}

/** Resolves when `port` can be listened on now (port 0 always can), else rejects with the listen error. */
const probe = (port: number): Promise<void> =>
  port === 0
    ? Promise.resolve()
    : new Promise((resolve, reject) => {
        const server = createServer()
        server.once('error', reject)
        server.listen(port, LOOPBACK, () => server.close(() => resolve()))
      })

/**
 * Every port is checked before anything starts (a sandbox or server that met a taken port
 * mid-start would leave the others running), and all at once: a second `npm start` holds all
 * three, and naming them one per run would make a person restart three times.
 */
export const ensureFree = async (ports: readonly (readonly [string, number])[]): Promise<void> => {
  const results = await Promise.allSettled(ports.map(([, port]) => probe(port)))
  const problems = ports.flatMap(([variable, port], i) => {
    const result = results[i]
    return result?.status === 'rejected' ? [{ variable, port, error: result.reason as unknown }] : []
  })
  const inUse = problems.filter((problem) => (problem.error as { code?: string }).code === 'EADDRINUSE')
  if (inUse.length > 1) {
    throw new ConfigError(
      inUse.map((problem) => problem.variable).join(', '),
      `ports ${inUse.map((problem) => problem.port).join(', ')} on ${LOOPBACK} are already in use by other programs (another npm start?); set them to free ports (0 picks one), e.g. ${inUse.map((problem) => `${problem.variable}=${problem.port + 10}`).join(' ')} npm start`,
    )
  }
  const [first] = problems
  if (first !== undefined) throw portProblem(first.variable, first.port, first.error)
}

export const listening = async <T>(variable: string, port: number, start: () => Promise<T>): Promise<T> => {
  try {
    return await start()
  } catch (error) {
    throw portProblem(variable, port, error)
  }
}
