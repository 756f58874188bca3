import { MIN_DELIVER_TIMEOUT_SECONDS } from '../config.ts'

/**
 * The deploy parameters (serverless.yml `params`, `--param="name=value"`), checked against the
 * limits AWS documents and turned into the values the template derives from them. osls resolves
 * `${file(./lib/cli/deploy-params.cjs)}` while it reads serverless.yml, so `npm run package`,
 * `npm run deploy` and its preflight all refuse a bad value before anything is built, with one
 * line per mistake naming the parameter, the value and what is allowed.
 */

export type QueueType = 'fifo' | 'standard'

/** What the template takes from the parameters beyond their plain values. */
export interface DerivedDeploySettings {
  /**
   * The events queue's visibility timeout: at least 6 × the deliver timeout plus the batching
   * window, as Lambda requires of an SQS event source (cfn-lint E3505 checks the same).
   * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
   */
  readonly eventsVisibilityTimeout: number
  /** The audience queue's, by the same rule from the audiences timeout and batching window. */
  readonly audiencesVisibilityTimeout: number
  /**
   * Properties set on the generated deliver event source: its batching window, or none at all on
   * a FIFO queue (null: osls drops it), which takes no window. Computed here rather than with a
   * template condition, so the template holds the one value that applies (cfn-lint checks a
   * BatchSize above 10 against it).
   */
  readonly deliverEventSourceProperties: { readonly MaximumBatchingWindowInSeconds: number | null }
  /**
   * Properties added to each generated function: its reserved concurrency, only when one is set.
   * None by default: an account whose concurrency quota is low (new accounts start at 10) refuses
   * any reservation, and the event sources' MaximumConcurrency already caps deliver and the list
   * sync without reserving anything.
   * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
   */
  readonly ingestFunctionProperties: ReservedConcurrency
  readonly deliverFunctionProperties: ReservedConcurrency
  readonly audiencesFunctionProperties: ReservedConcurrency
  /** The HTTP API stage's default route settings: its throttling. */
  readonly httpApiStageProperties: {
    readonly DefaultRouteSettings: {
      readonly DetailedMetricsEnabled: false
      readonly ThrottlingBurstLimit: number
      readonly ThrottlingRateLimit: number
    }
  }
}

export type ReservedConcurrency = { readonly ReservedConcurrentExecutions?: number }

export type RawParams = Readonly<Record<string, unknown>>

/** The audiences function's event source: its MaximumConcurrency (2, the least AWS allows). */
export const AUDIENCES_MAX_CONCURRENCY = 2

/** The parameters this module reads; a missing one (an older serverless.yml) is simply not checked. */
export const CHECKED_PARAMS = [
  'ingestAuth',
  'queueType',
  'courierRegion',
  'courierBaseUrl',
  'courierMaxRps',
  'courierGroupTenants',
  'courierAudienceLists',
  'deliverMaxConcurrency',
  'deliverBatchSize',
  'deliverBatchingWindowSeconds',
  'deliverTimeoutSeconds',
  'deliverMemoryMb',
  'ingestMemoryMb',
  'ingestReservedConcurrency',
  'deliverReservedConcurrency',
  'audiencesReservedConcurrency',
  'audiencesTimeoutSeconds',
  'audiencesBatchingWindowSeconds',
  'httpApiRateLimit',
  'httpApiBurstLimit',
  'logRetentionDays',
  'oldestMessageAlarmSeconds',
  'deadLetterAgeAlarmSeconds',
  'alarmEmail',
] as const

/** CloudWatch Logs' allowed retention periods. https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const

const text = (value: unknown): string => (value === undefined || value === null ? '' : String(value).trim())

class Checks {
  readonly problems: string[] = []
  readonly raw: RawParams
  constructor(raw: RawParams) {
    this.raw = raw
  }

  has(name: string): boolean {
    return this.raw[name] !== undefined
  }

  refuse(name: string, why: string): void {
    this.problems.push(`${name} "${text(this.raw[name])}": ${why}`)
  }

  integer(name: string, min: number, max: number, what: string): number {
    const value = text(this.raw[name])
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      this.refuse(name, `must be a whole number from ${min} to ${max} (${what})`)
      return min
    }
    return Number(value)
  }

  /** Empty: none; else a whole number from `min` (the event source's maximum concurrency, or 1). */
  reserved(name: string, min: number, what: string): ReservedConcurrency {
    if (text(this.raw[name]) === '') return {}
    return { ReservedConcurrentExecutions: this.integer(name, min, 10_000, what) }
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], what: string): T {
    const value = text(this.raw[name])
    if (!(allowed as readonly string[]).includes(value)) {
      this.refuse(name, `must be one of ${allowed.join(', ')} (${what})`)
      return allowed[0] as T
    }
    return value as T
  }
}

/**
 * Pure: every problem with `raw` (the resolved `param:` values), and the derived settings.
 * The limits, each from AWS's documentation:
 * - SQS event source: MaximumConcurrency 2–1000; BatchSize up to 10,000 on a standard queue, 10 on
 *   FIFO; a BatchSize above 10 needs MaximumBatchingWindowInSeconds ≥ 1; the window is 0–300 s
 *   and not supported on FIFO (the template leaves it out there, whatever the parameter says). https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html
 *   https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html
 * - Lambda: timeout 1–900 s, memory 128–10,240 MB. https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
 * - HTTP API throttling: rate and burst per route, within the account's 10,000 requests per
 *   second and burst of 5,000. https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html
 */
export const checkDeployParams = (raw: RawParams): { problems: string[]; derived: DerivedDeploySettings } => {
  const c = new Checks(raw)
  if (c.has('ingestAuth'))
    c.oneOf('ingestAuth', ['signature', 'token', 'both'], 'how ingest authenticates Segment')
  const queueType: QueueType = c.has('queueType')
    ? c.oneOf('queueType', ['fifo', 'standard'], 'the events queue and its DLQ')
    : 'standard'
  if (c.has('courierRegion')) c.oneOf('courierRegion', ['us', 'eu'], "Courier's API region")
  const baseUrl = text(raw.courierBaseUrl)
  if (baseUrl !== '' && !/^https?:\/\/[^\s/]+/.test(baseUrl)) {
    c.refuse('courierBaseUrl', 'must be empty or an absolute http(s) URL')
  }
  const maxRps = text(raw.courierMaxRps)
  if (maxRps !== '' && !(Number(maxRps) > 0 && Number.isFinite(Number(maxRps)))) {
    c.refuse('courierMaxRps', 'must be empty or a positive number of requests per second')
  }
  for (const name of ['courierGroupTenants', 'courierAudienceLists']) {
    if (c.has(name)) c.oneOf(name, ['true', 'false'], 'a switch')
  }

  const maxConcurrency = c.integer(
    'deliverMaxConcurrency',
    2,
    1_000,
    "the SQS event source's MaximumConcurrency",
  )
  const batchMax = queueType === 'fifo' ? 10 : 10_000
  const batchSize = c.integer('deliverBatchSize', 1, batchMax, `records per batch on a ${queueType} queue`)
  const window = c.integer('deliverBatchingWindowSeconds', 0, 300, 'the event source batching window')
  if (batchSize > 10 && window < 1 && queueType === 'standard') {
    c.refuse(
      'deliverBatchingWindowSeconds',
      `must be at least 1 when deliverBatchSize is above 10 (it is ${batchSize})`,
    )
  }
  // A FIFO event source takes no batching window: the template leaves it out there.
  const effectiveWindow = queueType === 'fifo' ? 0 : window
  const timeout = c.integer(
    'deliverTimeoutSeconds',
    MIN_DELIVER_TIMEOUT_SECONDS,
    900,
    "Lambda's maximum is 900; below 30 the deliver function has no time left after its finishing margin",
  )
  c.integer('deliverMemoryMb', 128, 10_240, "Lambda's memory range")
  c.integer('ingestMemoryMb', 128, 10_240, "Lambda's memory range")
  const ingestReserved = c.reserved(
    'ingestReservedConcurrency',
    1,
    'empty for none, else the instances kept for ingest',
  )
  // Reserved concurrency below the event source's maximum concurrency throttles the mapping, and
  // a throttled batch uses up a receive. https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
  const deliverReserved = c.reserved(
    'deliverReservedConcurrency',
    maxConcurrency,
    `empty for none, else at least deliverMaxConcurrency (${maxConcurrency})`,
  )
  const audiencesReserved = c.reserved(
    'audiencesReservedConcurrency',
    AUDIENCES_MAX_CONCURRENCY,
    `empty for none, else at least the list sync's maximum concurrency (${AUDIENCES_MAX_CONCURRENCY})`,
  )
  const audiencesTimeout = c.has('audiencesTimeoutSeconds')
    ? c.integer(
        'audiencesTimeoutSeconds',
        60,
        900,
        "Lambda's maximum is 900; a batch waits for list writes Courier paces at 20 a minute",
      )
    : 300
  const audiencesWindow = c.has('audiencesBatchingWindowSeconds')
    ? c.integer(
        'audiencesBatchingWindowSeconds',
        1,
        300,
        'the event source batching window; batches of 1,000 need at least 1',
      )
    : 20
  const rate = c.integer('httpApiRateLimit', 1, 10_000, 'requests per second; the account allows 10,000')
  const burst = c.integer('httpApiBurstLimit', 1, 5_000, 'requests at once; the account allows 5,000')
  if (c.has('logRetentionDays')) {
    const days = text(raw.logRetentionDays)
    if (!(LOG_RETENTION_DAYS as readonly number[]).includes(Number(days)) || !/^\d+$/.test(days)) {
      c.refuse(
        'logRetentionDays',
        `must be one of CloudWatch Logs' periods: ${LOG_RETENTION_DAYS.join(', ')}`,
      )
    }
  }
  c.integer('oldestMessageAlarmSeconds', 60, 1_209_600, 'seconds, at most the 14-day retention')
  if (c.has('deadLetterAgeAlarmSeconds')) {
    c.integer(
      'deadLetterAgeAlarmSeconds',
      60,
      1_209_600,
      'seconds, before the 14-day retention deletes a dead letter',
    )
  }
  const email = text(raw.alarmEmail)
  if (email !== '' && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
    c.refuse('alarmEmail', 'must be empty or an e-mail address')
  }

  return {
    problems: c.problems,
    derived: {
      eventsVisibilityTimeout: 6 * timeout + effectiveWindow,
      audiencesVisibilityTimeout: 6 * audiencesTimeout + audiencesWindow,
      deliverEventSourceProperties: { MaximumBatchingWindowInSeconds: queueType === 'fifo' ? null : window },
      ingestFunctionProperties: ingestReserved,
      deliverFunctionProperties: deliverReserved,
      audiencesFunctionProperties: audiencesReserved,
      httpApiStageProperties: {
        DefaultRouteSettings: {
          DetailedMetricsEnabled: false,
          ThrottlingBurstLimit: burst,
          ThrottlingRateLimit: rate,
        },
      },
    },
  }
}

/**
 * osls passes an error through unchanged only when it is its own "Cannot resolve variable at …";
 * any other it prints with a stack trace. This one carries the same name and wording, so a refusal
 * reads as one line per mistake.
 */
class ServerlessError extends Error {
  override readonly name = 'ServerlessError'
  readonly code = 'DEPLOY_PARAMETERS_REFUSED'
}

type ResolveVariable = (variable: string) => Promise<unknown>

/** For osls (`${file(./lib/cli/deploy-params.cjs)}`): reads every parameter, refuses or derives. */
export const resolveDeployParams = async (
  resolveVariable: ResolveVariable,
): Promise<DerivedDeploySettings> => {
  const raw: Record<string, unknown> = {}
  for (const name of CHECKED_PARAMS) {
    try {
      raw[name] = await resolveVariable(`param:${name}`)
    } catch (error) {
      // osls asks to be called again once a variable it depends on is resolved.
      if ((error as { code?: string }).code === 'MISSING_VARIABLE_DEPENDENCY') throw error
      // Not a parameter of this serverless.yml: nothing to check.
    }
  }
  const { problems, derived } = checkDeployParams(raw)
  if (problems.length > 0) {
    throw new ServerlessError(
      `Cannot resolve variable at "custom.deploy": the deploy parameters are refused:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    )
  }
  return derived
}
