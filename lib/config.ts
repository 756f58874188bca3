import { ConfigError } from './errors/config-error.ts'

/**
 * Every setting of the relay, read from environment variables once at cold start and
 * validated into one typed object. A bad value throws a ConfigError naming the variable
 * and what is allowed, so a misconfigured deploy fails on its first invocation instead of
 * quietly dropping events.
 */

/** A secret is given either as its value (local runs) or as an SSM SecureString name (deployed). */
export type SecretRef = { readonly value: string } | { readonly parameter: string }

export type CourierRegion = 'us' | 'eu'

export interface Config {
  readonly courier: {
    readonly baseUrl: string
    readonly region: CourierRegion
    readonly authToken: SecretRef | undefined
    readonly timeoutMs: number
    readonly groupTenants: boolean
    /** COURIER_AUDIENCE_LISTS: Engage audience events also change Courier list membership. */
    readonly audienceLists: boolean
    readonly maxRps: number | undefined
  }
  readonly ingest: {
    readonly sharedSecret: SecretRef | undefined
    readonly token: SecretRef | undefined
    /** Accepted besides sharedSecret during a rotation window. */
    readonly previousSharedSecret: SecretRef | undefined
    /** Accepted besides token during a rotation window. */
    readonly previousToken: SecretRef | undefined
    readonly maxBodyBytes: number
    readonly deadlineMs: number
  }
  readonly queue: {
    readonly url: string
    readonly dlqUrl: string
    /** AUDIENCE_QUEUE_URL: where deliver puts audience events for the list sync; required by deliver with audienceLists. */
    readonly audienceUrl: string | undefined
    /** A FIFO events queue (its URL ends in `.fifo`): messages carry group and deduplication ids. */
    readonly fifo: boolean
    readonly batchMaxBytes: number
  }
  readonly audiences: {
    /** AUDIENCE_TABLE_NAME: the list sync's membership ledger (DynamoDB); required by the list sync. */
    readonly table: string | undefined
  }
  readonly retry: {
    readonly baseSeconds: number
    readonly maxSeconds: number
    readonly rateLimitDelaySeconds: number
    readonly retryAfterMaxSeconds: number
    readonly authErrorDelaySeconds: number
    /** Older than this (from the queue's SentTimestamp), a record still failing is dead-lettered. */
    readonly maxEventAgeSeconds: number
  }
  readonly delivery: {
    readonly concurrency: number
    readonly eventSourceMaxConcurrency: number
  }
  readonly secretsCacheSeconds: number
  /** The deployed stage (`--stage`), a dimension of every metric so stages sharing an account never mix. */
  readonly stage: string
}

export type Env = Readonly<Record<string, string | undefined>>

export const COURIER_BASE_URLS: Readonly<Record<CourierRegion, string>> = {
  us: 'https://api.courier.com',
  eu: 'https://api.eu.courier.com',
}

/**
 * SQS caps a message's visibility at 12 hours **counted from the receive**: "If you attempt to
 * set the VisibilityTimeout to an amount more than the maximum time left, Amazon SQS returns an
 * error. It will not automatically recalculate and increase the timeout to the maximum time
 * remaining." https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html
 */
export const SQS_MAX_VISIBILITY_SECONDS = 43_200
/**
 * The longest retry delay a setting may ask for, before its ±20 % jitter: 35,000 s × 1.2 =
 * 42,000 s, which leaves 1,200 s of the 12 hours for the event source's batching window (at most
 * 300 s) and the invocation itself (at most 900 s) between the receive and the visibility change.
 * The worker also caps every delay at what is left of the 12 hours (lib/queue/visibility.ts).
 */
export const MAX_DELAY_SETTING_SECONDS = 35_000
/** SQS keeps a message at most 14 days. https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html */
export const SQS_MAX_RETENTION_SECONDS = 1_209_600
/**
 * MAX_EVENT_AGE_SECONDS may reach 13 days: a record checked just under that age can still be
 * hidden for up to 12 hours and needs one more invocation to be dead-lettered, all before SQS's
 * 14-day retention deletes it unseen.
 */
export const MAX_EVENT_AGE_LIMIT_SECONDS = SQS_MAX_RETENTION_SECONDS - 86_400
/**
 * SQS caps a message, and a whole SendMessageBatch, at 1 MiB (raised from 256 KiB in 2025):
 * the relay's per-message and per-call budget.
 * https://aws.amazon.com/blogs/compute/more-room-to-build-serverless-services-now-support-payloads-up-to-1-mb
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
 */
export const SQS_MAX_BATCH_BYTES = 1_048_576

/**
 * Lambda refuses a synchronous invocation whose payload, the whole event, exceeds 6,291,456 bytes.
 * https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
 */
export const LAMBDA_MAX_EVENT_BYTES = 6_291_456

/**
 * The smallest API Gateway HTTP API (v2) event around a body: requestContext, routeKey, rawPath
 * and the rest, with no header at all, is 511 bytes as JSON (lib/local/http-event.ts builds it;
 * AWS adds headers of its own, so a real one is bigger). With the body's two quotes, no body
 * larger than LAMBDA_MAX_EVENT_BYTES − 512 can ever reach the function.
 */
export const HTTP_API_EVENT_MIN_ENVELOPE_BYTES = 512

/** The documented defaults; README.md lists the same values. */
export const DEFAULTS = {
  COURIER_REGION: 'us',
  COURIER_TIMEOUT_MS: 10_000,
  COURIER_GROUP_TENANTS: false,
  COURIER_AUDIENCE_LISTS: true,
  /** The largest body that can reach Lambda at all (see HTTP_API_EVENT_MIN_ENVELOPE_BYTES). */
  MAX_BODY_BYTES: LAMBDA_MAX_EVENT_BYTES - HTTP_API_EVENT_MIN_ENVELOPE_BYTES,
  INGEST_DEADLINE_MS: 3_000,
  SQS_BATCH_MAX_BYTES: SQS_MAX_BATCH_BYTES,
  RETRY_BASE_SECONDS: 10,
  RETRY_MAX_SECONDS: 900,
  RATE_LIMIT_DELAY_SECONDS: 60,
  RETRY_AFTER_MAX_SECONDS: 3_600,
  AUTH_ERROR_DELAY_SECONDS: 900,
  /** 12 days: two days of headroom before SQS's 14-day retention. */
  MAX_EVENT_AGE_SECONDS: 1_036_800,
  DELIVERY_CONCURRENCY: 10,
  DELIVER_MAX_CONCURRENCY: 5,
  SECRETS_CACHE_SECONDS: 300,
  RELAY_STAGE: 'local',
} as const

const present = (env: Env, name: string): string | undefined => {
  const raw = env[name]?.trim()
  return raw === undefined || raw === '' ? undefined : raw
}

const integerWith = (
  env: Env,
  name: string,
  fallback: number,
  min: number,
  max: number,
  allowed: string,
): number => {
  const raw = present(env, name)
  if (raw === undefined) return fallback
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(name, `must be ${allowed}, got "${raw}"`)
  }
  return Number(raw)
}

const integer = (env: Env, name: string, fallback: number, min: number, max: number): number =>
  integerWith(env, name, fallback, min, max, `a whole number from ${min} to ${max}`)

const optionalPositive = (env: Env, name: string): number | undefined => {
  const raw = present(env, name)
  if (raw === undefined) return undefined
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0) {
    throw new ConfigError(name, `must be a positive number (requests per second), got "${raw}"`)
  }
  return value
}

const boolean = (env: Env, name: string, fallback: boolean): boolean => {
  const raw = present(env, name)?.toLowerCase()
  if (raw === undefined) return fallback
  if (['true', '1', 'yes'].includes(raw)) return true
  if (['false', '0', 'no'].includes(raw)) return false
  throw new ConfigError(name, `must be true or false, got "${raw}"`)
}

const url = (env: Env, name: string): string | undefined => {
  const raw = present(env, name)
  if (raw === undefined) return undefined
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    throw new ConfigError(name, `must be an absolute http(s) URL, got "${raw}"`)
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new ConfigError(name, `must be an absolute http(s) URL, got "${raw}"`)
  }
  return raw.replace(/\/+$/, '')
}

/** `NAME` holds the value itself; `NAME_PARAMETER` names an SSM SecureString holding it. */
const secret = (env: Env, name: string): SecretRef | undefined => {
  const value = present(env, name)
  const parameter = present(env, `${name}_PARAMETER`)
  if (value !== undefined && parameter !== undefined) {
    throw new ConfigError(name, `set either ${name} or ${name}_PARAMETER, not both`)
  }
  if (value !== undefined) return { value }
  if (parameter !== undefined) return { parameter }
  return undefined
}

/**
 * `NAME_PREVIOUS`: the value being rotated out, accepted besides `NAME` until Segment uses the new
 * one. Alone it would be a credential nobody meant to keep: refused.
 */
const previousSecret = (env: Env, name: string, current: SecretRef | undefined): SecretRef | undefined => {
  const previous = secret(env, `${name}_PREVIOUS`)
  if (previous !== undefined && current === undefined) {
    throw new ConfigError(
      `${name}_PREVIOUS`,
      `is only used while rotating ${name}: set ${name} (or ${name}_PARAMETER) to the new value too`,
    )
  }
  return previous
}

const region = (env: Env): CourierRegion => {
  const raw = (present(env, 'COURIER_REGION') ?? DEFAULTS.COURIER_REGION).toLowerCase()
  if (raw !== 'us' && raw !== 'eu')
    throw new ConfigError('COURIER_REGION', `must be "us" or "eu", got "${raw}"`)
  return raw
}

/**
 * RELAY_STAGE: the stage name the deploy sets (Serverless stage names are letters, digits and
 * hyphens; a CloudWatch dimension value is 1-1024 characters).
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Dimension.html
 */
const stage = (env: Env): string => {
  const raw = present(env, 'RELAY_STAGE') ?? DEFAULTS.RELAY_STAGE
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(raw)) {
    throw new ConfigError(
      'RELAY_STAGE',
      `must be a stage name (letters, digits, - and _, at most 128), got "${raw}"`,
    )
  }
  return raw
}

/**
 * A DynamoDB table name: 3-255 characters of letters, digits, '_', '-' and '.'.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html
 */
const tableName = (env: Env, name: string): string | undefined => {
  const raw = present(env, name)
  if (raw === undefined) return undefined
  if (!/^[A-Za-z0-9_.-]{3,255}$/.test(raw)) {
    throw new ConfigError(
      name,
      `must be a DynamoDB table name (3-255 letters, digits, '_', '-' or '.'), got "${raw}"`,
    )
  }
  return raw
}

const required = (env: Env, name: string, purpose: string): string => {
  const raw = url(env, name)
  if (raw === undefined) throw new ConfigError(name, `is required (${purpose})`)
  return raw
}

export const parseConfig = (env: Env): Config => {
  const courierRegion = region(env)
  const retryBase = integer(
    env,
    'RETRY_BASE_SECONDS',
    DEFAULTS.RETRY_BASE_SECONDS,
    1,
    MAX_DELAY_SETTING_SECONDS,
  )
  const retryMax = integer(env, 'RETRY_MAX_SECONDS', DEFAULTS.RETRY_MAX_SECONDS, 1, MAX_DELAY_SETTING_SECONDS)
  if (retryMax < retryBase) {
    throw new ConfigError(
      'RETRY_MAX_SECONDS',
      `must be at least RETRY_BASE_SECONDS (${retryBase}), got ${retryMax}`,
    )
  }
  const sharedSecret = secret(env, 'SEGMENT_SHARED_SECRET')
  const token = secret(env, 'INGEST_TOKEN')
  return {
    courier: {
      baseUrl: url(env, 'COURIER_BASE_URL') ?? COURIER_BASE_URLS[courierRegion],
      region: courierRegion,
      authToken: secret(env, 'COURIER_AUTH_TOKEN'),
      timeoutMs: integer(env, 'COURIER_TIMEOUT_MS', DEFAULTS.COURIER_TIMEOUT_MS, 100, 900_000),
      groupTenants: boolean(env, 'COURIER_GROUP_TENANTS', DEFAULTS.COURIER_GROUP_TENANTS),
      audienceLists: boolean(env, 'COURIER_AUDIENCE_LISTS', DEFAULTS.COURIER_AUDIENCE_LISTS),
      maxRps: optionalPositive(env, 'COURIER_MAX_RPS'),
    },
    ingest: {
      sharedSecret,
      token,
      previousSharedSecret: previousSecret(env, 'SEGMENT_SHARED_SECRET', sharedSecret),
      previousToken: previousSecret(env, 'INGEST_TOKEN', token),
      maxBodyBytes: integer(env, 'MAX_BODY_BYTES', DEFAULTS.MAX_BODY_BYTES, 1_024, 104_857_600),
      deadlineMs: integer(env, 'INGEST_DEADLINE_MS', DEFAULTS.INGEST_DEADLINE_MS, 100, 30_000),
    },
    queue: {
      ...queueUrls(env),
      audienceUrl: url(env, 'AUDIENCE_QUEUE_URL'),
      batchMaxBytes: integer(
        env,
        'SQS_BATCH_MAX_BYTES',
        DEFAULTS.SQS_BATCH_MAX_BYTES,
        1_024,
        SQS_MAX_BATCH_BYTES,
      ),
    },
    audiences: { table: tableName(env, 'AUDIENCE_TABLE_NAME') },
    retry: {
      baseSeconds: retryBase,
      maxSeconds: retryMax,
      rateLimitDelaySeconds: integer(
        env,
        'RATE_LIMIT_DELAY_SECONDS',
        DEFAULTS.RATE_LIMIT_DELAY_SECONDS,
        1,
        MAX_DELAY_SETTING_SECONDS,
      ),
      retryAfterMaxSeconds: integer(
        env,
        'RETRY_AFTER_MAX_SECONDS',
        DEFAULTS.RETRY_AFTER_MAX_SECONDS,
        1,
        MAX_DELAY_SETTING_SECONDS,
      ),
      authErrorDelaySeconds: integer(
        env,
        'AUTH_ERROR_DELAY_SECONDS',
        DEFAULTS.AUTH_ERROR_DELAY_SECONDS,
        1,
        MAX_DELAY_SETTING_SECONDS,
      ),
      maxEventAgeSeconds: integer(
        env,
        'MAX_EVENT_AGE_SECONDS',
        DEFAULTS.MAX_EVENT_AGE_SECONDS,
        1,
        MAX_EVENT_AGE_LIMIT_SECONDS,
      ),
    },
    delivery: {
      concurrency: integer(env, 'DELIVERY_CONCURRENCY', DEFAULTS.DELIVERY_CONCURRENCY, 1, 100),
      eventSourceMaxConcurrency: integer(
        env,
        'DELIVER_MAX_CONCURRENCY',
        DEFAULTS.DELIVER_MAX_CONCURRENCY,
        1,
        1_000,
      ),
    },
    secretsCacheSeconds: integer(env, 'SECRETS_CACHE_SECONDS', DEFAULTS.SECRETS_CACHE_SECONDS, 0, 86_400),
    stage: stage(env),
  }
}

/**
 * The Courier API key the deliver function sends, or a ConfigError naming what is missing. The
 * ingest function never calls Courier, so only deliver (and `npm start`, before it starts
 * anything) asks for it.
 */
export const courierAuthToken = (config: Config): SecretRef => {
  const ref = config.courier.authToken
  if (ref !== undefined) return ref
  throw new ConfigError(
    'COURIER_AUTH_TOKEN',
    'is required by the deliver function (the Courier API key; or COURIER_AUTH_TOKEN_PARAMETER)',
  )
}

/**
 * The settings of `npm start` itself: where its listeners bind and how its poller plays Lambda's
 * SQS event source. Validated with the ranges the deployed system accepts, so a value that works
 * locally also deploys.
 */
export interface LocalConfig {
  /** The webhook (ingest behind `POST /segment`). 0 picks a free port. */
  readonly port: number
  /** The embedded SQS. */
  readonly sqsPort: number
  /** The Courier sandbox, when no Courier is configured. */
  readonly sandboxPort: number
  /** Records per deliver invocation. */
  readonly deliverBatchSize: number
  /** How long one deliver invocation may run, in seconds. */
  readonly deliverTimeoutSeconds: number
  /** The events queue's visibility timeout, in seconds. */
  readonly visibilityTimeoutSeconds: number
  /** How long the local audience list sync gathers a batch, as its event source does (MaximumBatchingWindowInSeconds, ≤ 300). */
  readonly audienceBatchingWindowSeconds: number
  /** FIFO queues (the default, as deployed) or standard ones, as the deploy's `queueType`. */
  readonly queueType: QueueType
}

export type QueueType = 'fifo' | 'standard'

/** QUEUE_TYPE as `npm start` and the CLIs' `--local` read it: fifo (default) or standard. */
export const localQueueType = (env: Env): QueueType => {
  const raw = present(env, 'QUEUE_TYPE')?.toLowerCase() ?? 'fifo'
  if (raw !== 'fifo' && raw !== 'standard')
    throw new ConfigError('QUEUE_TYPE', `must be "fifo" or "standard", got "${raw}"`)
  return raw
}

/**
 * `npm start`'s defaults. SQS_PORT is not 4566: that is where LocalStack (and fauxqs's own CLI)
 * listen, and a relay that cannot start beside them is a poor first hour. The relay's three ports
 * sit together instead.
 */
export const LOCAL_DEFAULTS = {
  PORT: 3000,
  COURIER_SANDBOX_PORT: 3001,
  SQS_PORT: 3002,
  DELIVER_BATCH_SIZE: 10,
  DELIVER_TIMEOUT_SECONDS: 60,
  AUDIENCE_BATCHING_WINDOW_SECONDS: 20,
} as const

/**
 * Lambda's event source hands a function at most 10 records per batch from a FIFO queue, and a
 * poller receives at most 10 per ReceiveMessage call (MaxNumberOfMessages 1–10).
 * https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html
 */
export const MAX_DELIVER_BATCH_SIZE = 10
/** Lambda's longest function timeout: 900 s. https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html */
export const LAMBDA_MAX_TIMEOUT_SECONDS = 900
/**
 * "Set the queue's visibility timeout to at least six times the function timeout", so Lambda can
 * retry a throttled batch before the messages reappear.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-lambda-function-trigger.html
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
 */
export const VISIBILITY_PER_FUNCTION_TIMEOUT = 6

export type LocalPortName = 'PORT' | 'SQS_PORT' | 'COURIER_SANDBOX_PORT'

/** One of `npm start`'s ports, as the CLIs that talk to it read it too. */
export const localPort = (env: Env, name: LocalPortName): number =>
  integerWith(
    env,
    name,
    LOCAL_DEFAULTS[name],
    0,
    65_535,
    'a port number from 0 to 65535 (0 picks a free port)',
  )

/**
 * The least deliver timeout, deployed and local: the worker keeps about 16 s of each invocation to
 * finish its SQS calls (lib/queue/settle-batch.ts, finishMarginMs) and a Courier request may take 10 s.
 */
export const MIN_DELIVER_TIMEOUT_SECONDS = 30

export const parseLocalConfig = (env: Env): LocalConfig => {
  const deliverTimeoutSeconds = integer(
    env,
    'DELIVER_TIMEOUT_SECONDS',
    LOCAL_DEFAULTS.DELIVER_TIMEOUT_SECONDS,
    MIN_DELIVER_TIMEOUT_SECONDS,
    LAMBDA_MAX_TIMEOUT_SECONDS,
  )
  const floor = VISIBILITY_PER_FUNCTION_TIMEOUT * deliverTimeoutSeconds
  const visibilityTimeoutSeconds = integerWith(
    env,
    'VISIBILITY_TIMEOUT_SECONDS',
    floor,
    floor,
    SQS_MAX_VISIBILITY_SECONDS,
    `a whole number of seconds from ${floor} (${VISIBILITY_PER_FUNCTION_TIMEOUT} × DELIVER_TIMEOUT_SECONDS=${deliverTimeoutSeconds}, as Lambda's SQS event source requires) to ${SQS_MAX_VISIBILITY_SECONDS}`,
  )
  return {
    port: localPort(env, 'PORT'),
    sqsPort: localPort(env, 'SQS_PORT'),
    sandboxPort: localPort(env, 'COURIER_SANDBOX_PORT'),
    deliverBatchSize: integer(
      env,
      'DELIVER_BATCH_SIZE',
      LOCAL_DEFAULTS.DELIVER_BATCH_SIZE,
      1,
      MAX_DELIVER_BATCH_SIZE,
    ),
    deliverTimeoutSeconds,
    visibilityTimeoutSeconds,
    audienceBatchingWindowSeconds: integer(
      env,
      'AUDIENCE_BATCHING_WINDOW_SECONDS',
      LOCAL_DEFAULTS.AUDIENCE_BATCHING_WINDOW_SECONDS,
      0,
      300,
    ),
    queueType: localQueueType(env),
  }
}

/** Every variable parseLocalConfig reads. */
export const LOCAL_SETTING_NAMES = [
  'PORT',
  'SQS_PORT',
  'COURIER_SANDBOX_PORT',
  'DELIVER_BATCH_SIZE',
  'DELIVER_TIMEOUT_SECONDS',
  'VISIBILITY_TIMEOUT_SECONDS',
  'AUDIENCE_BATCHING_WINDOW_SECONDS',
  'QUEUE_TYPE',
] as const

/**
 * The two queues, which must be of one kind: the DLQ of a FIFO queue must be FIFO, and a FIFO
 * queue's name (so its URL) ends in `.fifo`.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
 */
const queueUrls = (env: Env) => {
  const url = required(env, 'QUEUE_URL', 'the SQS queue events are put on')
  const dlqUrl = required(env, 'DLQ_URL', 'the SQS dead-letter queue for events that can never be delivered')
  const fifo = url.endsWith('.fifo')
  if (dlqUrl.endsWith('.fifo') !== fifo) {
    throw new ConfigError(
      'DLQ_URL',
      fifo
        ? `must be a FIFO queue (a name ending in .fifo) like QUEUE_URL, got "${dlqUrl}"`
        : `must be a standard queue like QUEUE_URL (no .fifo), got "${dlqUrl}"`,
    )
  }
  return { url, dlqUrl, fifo }
}

/** Every variable parseConfig reads, for the README check and for error messages. */
export const SETTING_NAMES = [
  'COURIER_AUTH_TOKEN',
  'COURIER_AUTH_TOKEN_PARAMETER',
  'COURIER_BASE_URL',
  'COURIER_REGION',
  'COURIER_TIMEOUT_MS',
  'COURIER_GROUP_TENANTS',
  'COURIER_AUDIENCE_LISTS',
  'COURIER_MAX_RPS',
  'SEGMENT_SHARED_SECRET',
  'SEGMENT_SHARED_SECRET_PARAMETER',
  'INGEST_TOKEN',
  'INGEST_TOKEN_PARAMETER',
  'SEGMENT_SHARED_SECRET_PREVIOUS',
  'SEGMENT_SHARED_SECRET_PREVIOUS_PARAMETER',
  'INGEST_TOKEN_PREVIOUS',
  'INGEST_TOKEN_PREVIOUS_PARAMETER',
  'MAX_BODY_BYTES',
  'INGEST_DEADLINE_MS',
  'QUEUE_URL',
  'DLQ_URL',
  'AUDIENCE_QUEUE_URL',
  'AUDIENCE_TABLE_NAME',
  'SQS_BATCH_MAX_BYTES',
  'RETRY_BASE_SECONDS',
  'RETRY_MAX_SECONDS',
  'RATE_LIMIT_DELAY_SECONDS',
  'RETRY_AFTER_MAX_SECONDS',
  'AUTH_ERROR_DELAY_SECONDS',
  'MAX_EVENT_AGE_SECONDS',
  'DELIVERY_CONCURRENCY',
  'DELIVER_MAX_CONCURRENCY',
  'SECRETS_CACHE_SECONDS',
  'RELAY_STAGE',
] as const
