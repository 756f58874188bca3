import { LOCAL_DEFAULTS, localPort, localQueueType, type QueueType } from '../config.ts'
import { ConfigError } from '../errors/config-error.ts'

/**
 * Where the queues of a local run live, and which queues a CLI works on. `npm start` embeds
 * fauxqs on SQS_PORT (default 3002, clear of LocalStack's 4566) with these two queue names; the CLIs' `--local` finds them
 * here, so both sides read the same names.
 *
 * The URLs use fauxqs's own form (`sqs.<region>.localhost:<port>`). Such a host name may not
 * resolve, and fauxqs finds a queue by the region and name in the URL, never by its host, so
 * the SDK is always given the listen address as an explicit `endpoint`.
 */

/** A mistake in how the command was called: the CLI prints it with the usage and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

export const LOCAL_SQS_PORT: number = LOCAL_DEFAULTS.SQS_PORT
/** The events queue's name without the `.fifo` a FIFO queue's name ends with. */
export const LOCAL_QUEUE_NAME = 'segment-courier-relay-events'
export const LOCAL_DLQ_NAME = `${LOCAL_QUEUE_NAME}-dlq`
export const LOCAL_REGION = 'us-east-1'
export const LOCAL_ACCOUNT_ID = '000000000000'
/** The emulator checks no signature, but the SDK refuses to send without some credentials. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const

export interface LocalTarget {
  /** The SQS endpoint to give the SDK. */
  readonly endpoint: string
  readonly queueUrl: string
  readonly dlqUrl: string
}

export const localQueueUrl = (port: number, name: string): string =>
  `http://sqs.${LOCAL_REGION}.localhost:${port}/${LOCAL_ACCOUNT_ID}/${name}`

export const localTarget = (port: number = LOCAL_SQS_PORT, queueType: QueueType = 'fifo'): LocalTarget => {
  const suffix = queueType === 'fifo' ? '.fifo' : ''
  return {
    endpoint: `http://127.0.0.1:${port}`,
    queueUrl: localQueueUrl(port, `${LOCAL_QUEUE_NAME}${suffix}`),
    dlqUrl: localQueueUrl(port, `${LOCAL_DLQ_NAME}${suffix}`),
  }
}

export type Env = Readonly<Record<string, string | undefined>>

/** SQS_PORT as `npm start` reads it (a ConfigError naming it when malformed). */
export const localSqsPort = (env: Env): number => localPort(env, 'SQS_PORT')

/** An endpoint override the SDK itself honours: the queues are an emulator, not AWS. */
export const endpointOverride = (env: Env): string | undefined =>
  env.AWS_ENDPOINT_URL_SQS || env.AWS_ENDPOINT_URL || undefined

/** `https://sqs.eu-west-1.amazonaws.com/…` → eu-west-1: a queue URL names the region it must be signed for. */
export const regionOfQueueUrl = (url: string): string | undefined =>
  /^https?:\/\/sqs\.([a-z0-9-]+)\.(?:amazonaws\.com(?:\.cn)?|localhost)[:/]/.exec(url)?.[1]

/** The flags that say which queues a CLI works on, as parseFlags takes them (TargetFlags parsed). */
export const TARGET_FLAGS = {
  local: { type: 'boolean' },
  'dlq-url': { type: 'string' },
} as const

export interface TargetFlags {
  readonly local?: boolean | undefined
  readonly 'dlq-url'?: string | undefined
  readonly 'queue-url'?: string | undefined
}

/** The queues a CLI works on and how to reach them: pure, from the flags and the environment. */
export interface CliTarget {
  readonly dlqUrl: string
  /** The events queue, when known (given, or the local convention). */
  readonly queueUrl: string | undefined
  /** An explicit SDK endpoint (the local emulator); undefined means the SDK's own resolution. */
  readonly endpoint: string | undefined
  /** Talking to an emulator: `--local`, or an endpoint override in the environment. */
  readonly emulated: boolean
  readonly region: string | undefined
  readonly credentials: typeof LOCAL_CREDENTIALS | undefined
}

const isHttpUrl = (raw: string): boolean => /^https?:$/.test(URL.parse(raw)?.protocol ?? '')

/**
 * A queue URL from a flag (a UsageError when malformed) or from the environment (a ConfigError
 * naming the variable), so a typo is named instead of surfacing as the SDK's "Invalid URL".
 */
const queueUrlOf = (
  flag: string,
  value: string | undefined,
  variable: string,
  env: Env,
): string | undefined => {
  if (value) {
    if (!isHttpUrl(value)) {
      throw new UsageError(
        `--${flag} must be a queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/name, got "${value}"`,
      )
    }
    return value
  }
  const raw = env[variable]?.trim()
  if (!raw) return undefined
  if (!isHttpUrl(raw)) {
    throw new ConfigError(
      variable,
      `must be a queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/name, got "${raw}"`,
    )
  }
  return raw
}

export const cliTarget = (flags: TargetFlags, env: Env): CliTarget => {
  if (flags.local) {
    if (flags['dlq-url'] || flags['queue-url']) {
      throw new UsageError('--local names the queues of `npm start`: give it without --dlq-url/--queue-url')
    }
    const local = localTarget(localSqsPort(env), localQueueType(env))
    return {
      dlqUrl: local.dlqUrl,
      queueUrl: local.queueUrl,
      endpoint: local.endpoint,
      emulated: true,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    }
  }
  const dlqUrl = queueUrlOf('dlq-url', flags['dlq-url'], 'DLQ_URL', env)
  if (!dlqUrl) {
    throw new UsageError('say which DLQ: --local, or --dlq-url <DlqUrl from the deploy outputs> (or DLQ_URL)')
  }
  const queueUrl = queueUrlOf('queue-url', flags['queue-url'], 'QUEUE_URL', env)
  const override = endpointOverride(env)
  if (override !== undefined && !isHttpUrl(override)) {
    const variable = env.AWS_ENDPOINT_URL_SQS ? 'AWS_ENDPOINT_URL_SQS' : 'AWS_ENDPOINT_URL'
    throw new ConfigError(variable, `must be the http(s) URL of an SQS endpoint, got "${override}"`)
  }
  // An emulator takes any credentials; dummy ones spare a machine without AWS credentials the SDK's refusal.
  const ownCredentials = Boolean(env.AWS_ACCESS_KEY_ID || env.AWS_PROFILE)
  return {
    dlqUrl,
    queueUrl,
    // Passed explicitly so the client and the local/AWS decision read the same environment.
    endpoint: override,
    emulated: override !== undefined,
    // The URL's region wins over AWS_REGION: a request signed for another region is refused.
    region: regionOfQueueUrl(dlqUrl),
    credentials: override !== undefined && !ownCredentials ? LOCAL_CREDENTIALS : undefined,
  }
}
