import * as v from 'valibot'
import { ConfigError, configFailure } from './errors/config-error.ts'

/**
 * Every setting of the relay, read from environment variables once at cold start and validated
 * into one typed object, so a misconfigured deploy fails on its first invocation instead of
 * quietly dropping events. Every mistake is reported at once, one ConfigError line each naming
 * the variable, the value and what is allowed.
 *
 * The rules are valibot schemas (https://valibot.dev/): each validator is its own function, so a
 * Lambda bundle carries only the ones used (a few KiB, where a method-chaining library ships
 * whole), it collects every issue rather than stopping at the first, and it implements Standard
 * Schema (https://standardschema.dev/). The setting names are the schemas' keys.
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

/**
 * An environment variable as the relay reads it: trimmed, and unset when empty. (An absent one
 * reads as '' so that every rule runs, and the key is typed as present.)
 */
const text = v.pipe(
  v.optional(v.string(), ''),
  v.transform((raw) => (raw === undefined || raw.trim() === '' ? undefined : raw.trim())),
)

const isWhole = (raw: string, min: number, max: number) =>
  /^\d+$/.test(raw) && Number(raw) >= min && Number(raw) <= max

/** A whole number from `min` to `max`, `fallback` when unset; `allowed` says so in the message. */
const wholeNumber = (
  fallback: number,
  min: number,
  max: number,
  allowed = `a whole number from ${min} to ${max}`,
) =>
  v.pipe(
    text,
    v.check(
      (raw) => raw === undefined || isWhole(raw, min, max),
      (issue) => `must be ${allowed}, got "${String(issue.input)}"`,
    ),
    v.transform((raw) => (raw === undefined ? fallback : Number(raw))),
  )

const positiveNumber = v.pipe(
  text,
  v.check(
    (raw) => raw === undefined || (Number.isFinite(Number(raw)) && Number(raw) > 0),
    (issue) => `must be a positive number (requests per second), got "${String(issue.input)}"`,
  ),
  v.transform((raw) => (raw === undefined ? undefined : Number(raw))),
)

const TRUE = ['true', '1', 'yes']
const FALSE = ['false', '0', 'no']

const lowercase = v.pipe(
  text,
  v.transform((raw) => raw?.toLowerCase()),
)

const switchOf = (fallback: boolean) =>
  v.pipe(
    lowercase,
    v.check(
      (raw) => raw === undefined || TRUE.includes(raw) || FALSE.includes(raw),
      (issue) => `must be true or false, got "${String(issue.input)}"`,
    ),
    v.transform((raw) => (raw === undefined ? fallback : TRUE.includes(raw))),
  )

/** One of `choices` (case-insensitive), `fallback` when unset. */
const oneOf = <T extends string>(choices: readonly T[], fallback: T) =>
  v.pipe(
    lowercase,
    v.transform((raw) => raw ?? fallback),
    v.check(
      (raw) => (choices as readonly string[]).includes(raw),
      (issue) =>
        `must be ${choices.map((choice) => `"${choice}"`).join(' or ')}, got "${String(issue.input)}"`,
    ),
    v.transform((raw) => raw as T),
  )

const isHttpUrl = (raw: string) => {
  try {
    const { protocol } = new URL(raw)
    return protocol === 'https:' || protocol === 'http:'
  } catch {
    return false
  }
}

const urlChecks = [
  v.check(
    (raw: string | undefined) => raw === undefined || isHttpUrl(raw),
    (issue) => `must be an absolute http(s) URL, got "${String(issue.input)}"`,
  ),
  v.transform((raw: string | undefined) => raw?.replace(/\/+$/, '')),
] as const

/** An absolute http(s) URL without its trailing slashes, or undefined. */
const url = v.pipe(text, ...urlChecks)

/**
 * Whether a URL's host is this machine: `localhost`, 127.0.0.0/8 (RFC 1122 3.2.1.3) or ::1
 * (RFC 4291 2.5.3), as the WHATWG URL parser writes them (it normalises `0x7f.1` to `127.0.0.1`).
 */
const isLoopback = (raw: string): boolean => {
  const { hostname } = new URL(raw)
  return hostname === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(hostname) || hostname === '[::1]'
}

/**
 * As `url`, and only https:// unless it points at this machine: the Courier token travels in every
 * request's Authorization header, so plain http to another host would send it in clear.
 */
const httpsUrl = v.pipe(
  url,
  v.check(
    (value) => value === undefined || new URL(value).protocol === 'https:' || isLoopback(value),
    (issue) =>
      `must be an https:// URL (plain http is allowed only for localhost, 127.0.0.0/8 and [::1]), got "${String(issue.input)}"`,
  ),
)

/** As `url`, and refused when unset, saying what it is for. */
const requiredUrl = (purpose: string) =>
  v.pipe(
    text,
    v.check((raw) => raw !== undefined, `is required (${purpose})`),
    ...urlChecks,
    v.transform((raw) => raw as string),
  )

/**
 * RELAY_STAGE: the stage name the deploy sets (Serverless stage names are letters, digits and
 * hyphens; a CloudWatch dimension value is 1-1024 characters).
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Dimension.html
 */
const stageName = v.pipe(
  text,
  v.transform((raw) => raw ?? DEFAULTS.RELAY_STAGE),
  v.regex(
    /^[A-Za-z0-9_-]{1,128}$/,
    (issue) => `must be a stage name (letters, digits, - and _, at most 128), got "${String(issue.input)}"`,
  ),
)

/**
 * A DynamoDB table name: 3-255 characters of letters, digits, '_', '-' and '.'.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html
 */
const tableName = v.pipe(
  text,
  v.check(
    (raw) => raw === undefined || /^[A-Za-z0-9_.-]{3,255}$/.test(raw),
    (issue) =>
      `must be a DynamoDB table name (3-255 letters, digits, '_', '-' or '.'), got "${String(issue.input)}"`,
  ),
)

/**
 * A rule between settings, reported as a mistake of `target`. It runs only once each setting in
 * `reads` passed its own rule (a mistake there is already reported), and `requirement` and
 * `message` get the whole parsed object.
 */
export const between = <T extends Record<string, unknown>>(
  reads: readonly (keyof T & string)[],
  target: keyof T & string,
  requirement: (input: T) => boolean,
  message: string | ((input: T) => string),
): v.BaseValidation<T, T, v.BaseIssue<unknown>> => {
  const check = v.partialCheck(
    reads.map((name) => [name]) as [[string]],
    requirement as (input: unknown) => boolean,
    typeof message === 'string' ? message : (issue) => message(issue.input as T),
  ) as unknown as v.BaseValidation<T, T, v.BaseIssue<unknown>>
  return v.forward(check, [target] as never)
}

const delaySeconds = (fallback: number) => wholeNumber(fallback, 1, MAX_DELAY_SETTING_SECONDS)

/** The variables parseConfig reads, each with its rule: the setting names are these keys. */
const RELAY_SETTINGS = v.object({
  COURIER_AUTH_TOKEN: text,
  COURIER_AUTH_TOKEN_PARAMETER: text,
  COURIER_BASE_URL: httpsUrl,
  COURIER_REGION: oneOf<CourierRegion>(['us', 'eu'], DEFAULTS.COURIER_REGION),
  COURIER_TIMEOUT_MS: wholeNumber(DEFAULTS.COURIER_TIMEOUT_MS, 100, 900_000),
  COURIER_GROUP_TENANTS: switchOf(DEFAULTS.COURIER_GROUP_TENANTS),
  COURIER_AUDIENCE_LISTS: switchOf(DEFAULTS.COURIER_AUDIENCE_LISTS),
  COURIER_MAX_RPS: positiveNumber,
  SEGMENT_SHARED_SECRET: text,
  SEGMENT_SHARED_SECRET_PARAMETER: text,
  INGEST_TOKEN: text,
  INGEST_TOKEN_PARAMETER: text,
  SEGMENT_SHARED_SECRET_PREVIOUS: text,
  SEGMENT_SHARED_SECRET_PREVIOUS_PARAMETER: text,
  INGEST_TOKEN_PREVIOUS: text,
  INGEST_TOKEN_PREVIOUS_PARAMETER: text,
  MAX_BODY_BYTES: wholeNumber(DEFAULTS.MAX_BODY_BYTES, 1_024, 104_857_600),
  INGEST_DEADLINE_MS: wholeNumber(DEFAULTS.INGEST_DEADLINE_MS, 100, 30_000),
  QUEUE_URL: requiredUrl('the SQS queue events are put on'),
  DLQ_URL: requiredUrl('the SQS dead-letter queue for events that can never be delivered'),
  AUDIENCE_QUEUE_URL: url,
  AUDIENCE_TABLE_NAME: tableName,
  SQS_BATCH_MAX_BYTES: wholeNumber(DEFAULTS.SQS_BATCH_MAX_BYTES, 1_024, SQS_MAX_BATCH_BYTES),
  RETRY_BASE_SECONDS: delaySeconds(DEFAULTS.RETRY_BASE_SECONDS),
  RETRY_MAX_SECONDS: delaySeconds(DEFAULTS.RETRY_MAX_SECONDS),
  RATE_LIMIT_DELAY_SECONDS: delaySeconds(DEFAULTS.RATE_LIMIT_DELAY_SECONDS),
  RETRY_AFTER_MAX_SECONDS: delaySeconds(DEFAULTS.RETRY_AFTER_MAX_SECONDS),
  AUTH_ERROR_DELAY_SECONDS: delaySeconds(DEFAULTS.AUTH_ERROR_DELAY_SECONDS),
  MAX_EVENT_AGE_SECONDS: wholeNumber(DEFAULTS.MAX_EVENT_AGE_SECONDS, 1, MAX_EVENT_AGE_LIMIT_SECONDS),
  DELIVERY_CONCURRENCY: wholeNumber(DEFAULTS.DELIVERY_CONCURRENCY, 1, 100),
  DELIVER_MAX_CONCURRENCY: wholeNumber(DEFAULTS.DELIVER_MAX_CONCURRENCY, 1, 1_000),
  SECRETS_CACHE_SECONDS: wholeNumber(DEFAULTS.SECRETS_CACHE_SECONDS, 0, 86_400),
  RELAY_STAGE: stageName,
})

type RelaySettings = v.InferOutput<typeof RELAY_SETTINGS>
type SettingName = keyof typeof RELAY_SETTINGS.entries

/** Every variable parseConfig reads, for the README check and for error messages. */
export const SETTING_NAMES = Object.keys(RELAY_SETTINGS.entries) as SettingName[]

type SecretName = 'COURIER_AUTH_TOKEN' | 'SEGMENT_SHARED_SECRET' | 'INGEST_TOKEN'
type RotatedName = 'SEGMENT_SHARED_SECRET' | 'INGEST_TOKEN'

/** `NAME` holds the value itself; `NAME_PARAMETER` names an SSM SecureString holding it; never both. */
const eitherValueOrParameter = (name: SecretName | `${RotatedName}_PREVIOUS`) =>
  between<RelaySettings>(
    [name, `${name}_PARAMETER`],
    name,
    (input) => input[name] === undefined || input[`${name}_PARAMETER`] === undefined,
    `set either ${name} or ${name}_PARAMETER, not both`,
  )

const secretOf = (
  settings: RelaySettings,
  name: SecretName | `${RotatedName}_PREVIOUS`,
): SecretRef | undefined => {
  const value = settings[name]
  if (value !== undefined) return { value }
  const parameter = settings[`${name}_PARAMETER`]
  return parameter === undefined ? undefined : { parameter }
}

/**
 * `NAME_PREVIOUS`: the value being rotated out, accepted besides `NAME` until Segment uses the new
 * one. Alone it would be a credential nobody meant to keep: refused.
 */
const previousOnlyWhileRotating = (name: RotatedName) =>
  between<RelaySettings>(
    [name, `${name}_PARAMETER`, `${name}_PREVIOUS`, `${name}_PREVIOUS_PARAMETER`],
    `${name}_PREVIOUS`,
    (input) => secretOf(input, `${name}_PREVIOUS`) === undefined || secretOf(input, name) !== undefined,
    `is only used while rotating ${name}: set ${name} (or ${name}_PARAMETER) to the new value too`,
  )

/**
 * The two queues, which must be of one kind: the DLQ of a FIFO queue must be FIFO, and a FIFO
 * queue's name (so its URL) ends in `.fifo`.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
 */
const queuesOfOneKind = between<RelaySettings>(
  ['QUEUE_URL', 'DLQ_URL'],
  'DLQ_URL',
  (input) => input.QUEUE_URL.endsWith('.fifo') === input.DLQ_URL.endsWith('.fifo'),
  (input) =>
    input.QUEUE_URL.endsWith('.fifo')
      ? `must be a FIFO queue (a name ending in .fifo) like QUEUE_URL, got "${input.DLQ_URL}"`
      : `must be a standard queue like QUEUE_URL (no .fifo), got "${input.DLQ_URL}"`,
)

const retryMaxAtLeastBase = between<RelaySettings>(
  ['RETRY_BASE_SECONDS', 'RETRY_MAX_SECONDS'],
  'RETRY_MAX_SECONDS',
  (input) => input.RETRY_MAX_SECONDS >= input.RETRY_BASE_SECONDS,
  (input) =>
    `must be at least RETRY_BASE_SECONDS (${input.RETRY_BASE_SECONDS}), got ${input.RETRY_MAX_SECONDS}`,
)

const toConfig = (s: RelaySettings): Config => ({
  courier: {
    baseUrl: s.COURIER_BASE_URL ?? COURIER_BASE_URLS[s.COURIER_REGION],
    region: s.COURIER_REGION,
    authToken: secretOf(s, 'COURIER_AUTH_TOKEN'),
    timeoutMs: s.COURIER_TIMEOUT_MS,
    groupTenants: s.COURIER_GROUP_TENANTS,
    audienceLists: s.COURIER_AUDIENCE_LISTS,
    maxRps: s.COURIER_MAX_RPS,
  },
  ingest: {
    sharedSecret: secretOf(s, 'SEGMENT_SHARED_SECRET'),
    token: secretOf(s, 'INGEST_TOKEN'),
    previousSharedSecret: secretOf(s, 'SEGMENT_SHARED_SECRET_PREVIOUS'),
    previousToken: secretOf(s, 'INGEST_TOKEN_PREVIOUS'),
    maxBodyBytes: s.MAX_BODY_BYTES,
    deadlineMs: s.INGEST_DEADLINE_MS,
  },
  queue: {
    url: s.QUEUE_URL,
    dlqUrl: s.DLQ_URL,
    fifo: s.QUEUE_URL.endsWith('.fifo'),
    audienceUrl: s.AUDIENCE_QUEUE_URL,
    batchMaxBytes: s.SQS_BATCH_MAX_BYTES,
  },
  audiences: { table: s.AUDIENCE_TABLE_NAME },
  retry: {
    baseSeconds: s.RETRY_BASE_SECONDS,
    maxSeconds: s.RETRY_MAX_SECONDS,
    rateLimitDelaySeconds: s.RATE_LIMIT_DELAY_SECONDS,
    retryAfterMaxSeconds: s.RETRY_AFTER_MAX_SECONDS,
    authErrorDelaySeconds: s.AUTH_ERROR_DELAY_SECONDS,
    maxEventAgeSeconds: s.MAX_EVENT_AGE_SECONDS,
  },
  delivery: {
    concurrency: s.DELIVERY_CONCURRENCY,
    eventSourceMaxConcurrency: s.DELIVER_MAX_CONCURRENCY,
  },
  secretsCacheSeconds: s.SECRETS_CACHE_SECONDS,
  stage: s.RELAY_STAGE,
})

const RELAY_CONFIG = v.pipe(
  RELAY_SETTINGS,
  eitherValueOrParameter('COURIER_AUTH_TOKEN'),
  eitherValueOrParameter('SEGMENT_SHARED_SECRET'),
  eitherValueOrParameter('INGEST_TOKEN'),
  eitherValueOrParameter('SEGMENT_SHARED_SECRET_PREVIOUS'),
  eitherValueOrParameter('INGEST_TOKEN_PREVIOUS'),
  previousOnlyWhileRotating('SEGMENT_SHARED_SECRET'),
  previousOnlyWhileRotating('INGEST_TOKEN'),
  queuesOfOneKind,
  retryMaxAtLeastBase,
  v.transform(toConfig),
)

/**
 * `env` checked against `schema`: its output, or every mistake at once (a ConfigError for one,
 * an AggregateError of ConfigErrors, one line each, for several). Each mistake is named by the
 * variable its issue is about.
 */
export const parseSettings = <Schema extends v.GenericSchema<Env, unknown>>(
  schema: Schema,
  env: Env,
): v.InferOutput<Schema> => {
  const result = v.safeParse(schema, env)
  if (result.success) return result.output
  throw configFailure(
    result.issues.map((issue) => new ConfigError(v.getDotPath(issue) ?? 'settings', issue.message)),
  )
}

/** The relay's settings from `env`; throws every mistake at once (see parseSettings). */
export const parseConfig = (env: Env): Config => parseSettings(RELAY_CONFIG, env)

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

const queueType = oneOf<QueueType>(['fifo', 'standard'], 'fifo')

/** QUEUE_TYPE as `npm start` and the CLIs' `--local` read it: fifo (default) or standard. */
export const localQueueType = (env: Env): QueueType =>
  parseSettings(v.object({ QUEUE_TYPE: queueType }), env).QUEUE_TYPE

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

const port = (name: LocalPortName) =>
  wholeNumber(LOCAL_DEFAULTS[name], 0, 65_535, 'a port number from 0 to 65535 (0 picks a free port)')

/** One of `npm start`'s ports, as the CLIs that talk to it read it too. */
export const localPort = (env: Env, name: LocalPortName): number =>
  parseSettings(v.object({ [name]: port(name) }), env)[name] as number

/**
 * The least deliver timeout, deployed and local: the worker keeps about 16 s of each invocation to
 * finish its SQS calls (lib/queue/settle-batch.ts, finishMarginMs) and a Courier request may take 10 s.
 */
export const MIN_DELIVER_TIMEOUT_SECONDS = 30

/** The variables parseLocalConfig reads, each with its rule. */
const LOCAL_SETTINGS = v.object({
  PORT: port('PORT'),
  SQS_PORT: port('SQS_PORT'),
  COURIER_SANDBOX_PORT: port('COURIER_SANDBOX_PORT'),
  DELIVER_BATCH_SIZE: wholeNumber(LOCAL_DEFAULTS.DELIVER_BATCH_SIZE, 1, MAX_DELIVER_BATCH_SIZE),
  DELIVER_TIMEOUT_SECONDS: wholeNumber(
    LOCAL_DEFAULTS.DELIVER_TIMEOUT_SECONDS,
    MIN_DELIVER_TIMEOUT_SECONDS,
    LAMBDA_MAX_TIMEOUT_SECONDS,
  ),
  /** Checked against DELIVER_TIMEOUT_SECONDS below. */
  VISIBILITY_TIMEOUT_SECONDS: text,
  AUDIENCE_BATCHING_WINDOW_SECONDS: wholeNumber(LOCAL_DEFAULTS.AUDIENCE_BATCHING_WINDOW_SECONDS, 0, 300),
  QUEUE_TYPE: queueType,
})

type LocalSettings = v.InferOutput<typeof LOCAL_SETTINGS>

/** Every variable parseLocalConfig reads. */
export const LOCAL_SETTING_NAMES = Object.keys(
  LOCAL_SETTINGS.entries,
) as (keyof typeof LOCAL_SETTINGS.entries)[]

/** The least visibility timeout Lambda's SQS event source accepts for this deliver timeout. */
const visibilityFloor = (input: LocalSettings) =>
  VISIBILITY_PER_FUNCTION_TIMEOUT * input.DELIVER_TIMEOUT_SECONDS

const LOCAL_CONFIG = v.pipe(
  LOCAL_SETTINGS,
  between<LocalSettings>(
    ['DELIVER_TIMEOUT_SECONDS', 'VISIBILITY_TIMEOUT_SECONDS'],
    'VISIBILITY_TIMEOUT_SECONDS',
    (input) =>
      input.VISIBILITY_TIMEOUT_SECONDS === undefined ||
      isWhole(input.VISIBILITY_TIMEOUT_SECONDS, visibilityFloor(input), SQS_MAX_VISIBILITY_SECONDS),
    (input) =>
      `must be a whole number of seconds from ${visibilityFloor(input)} (${VISIBILITY_PER_FUNCTION_TIMEOUT} × DELIVER_TIMEOUT_SECONDS=${input.DELIVER_TIMEOUT_SECONDS}, as Lambda's SQS event source requires) to ${SQS_MAX_VISIBILITY_SECONDS}, got "${input.VISIBILITY_TIMEOUT_SECONDS}"`,
  ),
  v.transform(
    (s): LocalConfig => ({
      port: s.PORT,
      sqsPort: s.SQS_PORT,
      sandboxPort: s.COURIER_SANDBOX_PORT,
      deliverBatchSize: s.DELIVER_BATCH_SIZE,
      deliverTimeoutSeconds: s.DELIVER_TIMEOUT_SECONDS,
      visibilityTimeoutSeconds:
        s.VISIBILITY_TIMEOUT_SECONDS === undefined
          ? visibilityFloor(s)
          : Number(s.VISIBILITY_TIMEOUT_SECONDS),
      audienceBatchingWindowSeconds: s.AUDIENCE_BATCHING_WINDOW_SECONDS,
      queueType: s.QUEUE_TYPE,
    }),
  ),
)

/** `npm start`'s settings from `env`; throws every mistake at once (see parseSettings). */
export const parseLocalConfig = (env: Env): LocalConfig => parseSettings(LOCAL_CONFIG, env)
