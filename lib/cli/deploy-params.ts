import * as v from 'valibot'
import { between, MIN_DELIVER_TIMEOUT_SECONDS } from '../config.ts'

/**
 * The deploy parameters (serverless.yml `params`, `--param="name=value"`), checked against the
 * limits AWS documents and turned into the values the template derives from them. osls resolves
 * `${file(./lib/cli/deploy-params.cjs)}` while it reads serverless.yml, so `npm run package`,
 * `npm run deploy` and its preflight all refuse a bad value before anything is built, with one
 * line per mistake naming the parameter, the value and what is allowed. The rules are valibot
 * schemas, as the relay's own settings are (lib/config.ts says why).
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

/** The audiences function's timeout and batching window when serverless.yml does not set them. */
const AUDIENCES_DEFAULTS = { timeoutSeconds: 300, batchingWindowSeconds: 20 } as const

/** CloudWatch Logs' allowed retention periods. https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const

const text = (value: unknown): string => (value === undefined || value === null ? '' : String(value).trim())

/** A parameter as osls resolves it (a string, number or boolean), as text. */
const param = v.pipe(v.unknown(), v.transform(text))

const isWhole = (value: string, min: number, max: number) =>
  /^\d+$/.test(value) && Number(value) >= min && Number(value) <= max

const whole = (min: number, max: number, what: string) =>
  v.pipe(
    param,
    v.check((value) => isWhole(value, min, max), `must be a whole number from ${min} to ${max} (${what})`),
  )

const oneOf = (allowed: readonly string[], what: string) =>
  v.pipe(
    param,
    v.check((value) => allowed.includes(value), `must be one of ${allowed.join(', ')} (${what})`),
  )

const emptyOr = (rule: (value: string) => boolean, message: string) =>
  v.pipe(
    param,
    v.check((value) => value === '' || rule(value), message),
  )

/** Absent from serverless.yml (an older one): not checked. */
const ifGiven = v.optional

/**
 * Each parameter's own rule; the rules between parameters follow in DEPLOY_PARAMS. The limits,
 * each from AWS's documentation:
 * - SQS event source: MaximumConcurrency 2–1000; BatchSize up to 10,000 on a standard queue, 10 on
 *   FIFO; a BatchSize above 10 needs MaximumBatchingWindowInSeconds ≥ 1; the window is 0–300 s
 *   and not supported on FIFO (the template leaves it out there, whatever the parameter says). https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html
 *   https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html
 * - Lambda: timeout 1–900 s, memory 128–10,240 MB. https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
 * - HTTP API throttling: rate and burst per route, within the account's 10,000 requests per
 *   second and burst of 5,000. https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html
 */
const PARAMS = v.object({
  ingestAuth: ifGiven(oneOf(['signature', 'token', 'both'], 'how ingest authenticates Segment')),
  queueType: ifGiven(oneOf(['fifo', 'standard'], 'the events queue and its DLQ')),
  courierRegion: ifGiven(oneOf(['us', 'eu'], "Courier's API region")),
  courierBaseUrl: emptyOr(
    (value) => /^https?:\/\/[^\s/]+/.test(value),
    'must be empty or an absolute http(s) URL',
  ),
  courierMaxRps: emptyOr(
    (value) => Number(value) > 0 && Number.isFinite(Number(value)),
    'must be empty or a positive number of requests per second',
  ),
  courierGroupTenants: ifGiven(oneOf(['true', 'false'], 'a switch')),
  courierAudienceLists: ifGiven(oneOf(['true', 'false'], 'a switch')),
  deliverMaxConcurrency: whole(2, 1_000, "the SQS event source's MaximumConcurrency"),
  /** Its range depends on queueType: checked below. */
  deliverBatchSize: param,
  deliverBatchingWindowSeconds: whole(0, 300, 'the event source batching window'),
  deliverTimeoutSeconds: whole(
    MIN_DELIVER_TIMEOUT_SECONDS,
    900,
    "Lambda's maximum is 900; below 30 the deliver function has no time left after its finishing margin",
  ),
  deliverMemoryMb: whole(128, 10_240, "Lambda's memory range"),
  ingestMemoryMb: whole(128, 10_240, "Lambda's memory range"),
  ingestReservedConcurrency: emptyOr(
    (value) => isWhole(value, 1, 10_000),
    'must be a whole number from 1 to 10000 (empty for none, else the instances kept for ingest)',
  ),
  /** Its least value is deliverMaxConcurrency: checked below. */
  deliverReservedConcurrency: param,
  audiencesReservedConcurrency: emptyOr(
    (value) => isWhole(value, AUDIENCES_MAX_CONCURRENCY, 10_000),
    `must be a whole number from ${AUDIENCES_MAX_CONCURRENCY} to 10000 (empty for none, else at least the list sync's maximum concurrency (${AUDIENCES_MAX_CONCURRENCY}))`,
  ),
  audiencesTimeoutSeconds: ifGiven(
    whole(60, 900, "Lambda's maximum is 900; a batch waits for list writes Courier paces at 20 a minute"),
  ),
  audiencesBatchingWindowSeconds: ifGiven(
    whole(1, 300, 'the event source batching window; batches of 1,000 need at least 1'),
  ),
  httpApiRateLimit: whole(1, 10_000, 'requests per second; the account allows 10,000'),
  httpApiBurstLimit: whole(1, 5_000, 'requests at once; the account allows 5,000'),
  logRetentionDays: ifGiven(
    v.pipe(
      param,
      v.check(
        (value) => /^\d+$/.test(value) && (LOG_RETENTION_DAYS as readonly number[]).includes(Number(value)),
        `must be one of CloudWatch Logs' periods: ${LOG_RETENTION_DAYS.join(', ')}`,
      ),
    ),
  ),
  oldestMessageAlarmSeconds: whole(60, 1_209_600, 'seconds, at most the 14-day retention'),
  deadLetterAgeAlarmSeconds: ifGiven(
    whole(60, 1_209_600, 'seconds, before the 14-day retention deletes a dead letter'),
  ),
  alarmEmail: emptyOr(
    (value) => /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(value),
    'must be empty or an e-mail address',
  ),
})

type Params = v.InferOutput<typeof PARAMS>

/** The parameters this module reads; a missing one (an older serverless.yml) is simply not checked. */
export const CHECKED_PARAMS = Object.keys(PARAMS.entries) as (keyof typeof PARAMS.entries)[]

/** A standard queue unless the deploy says FIFO (serverless.yml's default). */
const queueTypeOf = (params: Params): QueueType => (params.queueType === 'fifo' ? 'fifo' : 'standard')
const batchMaxOf = (params: Params) => (queueTypeOf(params) === 'fifo' ? 10 : 10_000)

const DEPLOY_PARAMS = v.pipe(
  PARAMS,
  // Reserved concurrency below the event source's maximum concurrency throttles the mapping, and
  // a throttled batch uses up a receive. https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
  between<Params>(
    ['deliverMaxConcurrency', 'deliverReservedConcurrency'],
    'deliverReservedConcurrency',
    (params) =>
      params.deliverReservedConcurrency === '' ||
      isWhole(params.deliverReservedConcurrency, Number(params.deliverMaxConcurrency), 10_000),
    (params) =>
      `must be a whole number from ${params.deliverMaxConcurrency} to 10000 (empty for none, else at least deliverMaxConcurrency (${params.deliverMaxConcurrency}))`,
  ),
  between<Params>(
    ['queueType', 'deliverBatchSize'],
    'deliverBatchSize',
    (params) => isWhole(params.deliverBatchSize, 1, batchMaxOf(params)),
    (params) =>
      `must be a whole number from 1 to ${batchMaxOf(params)} (records per batch on a ${queueTypeOf(params)} queue)`,
  ),
  between<Params>(
    ['queueType', 'deliverBatchSize', 'deliverBatchingWindowSeconds'],
    'deliverBatchingWindowSeconds',
    (params) =>
      !(
        Number(params.deliverBatchSize) > 10 &&
        Number(params.deliverBatchingWindowSeconds) < 1 &&
        queueTypeOf(params) === 'standard'
      ),
    (params) => `must be at least 1 when deliverBatchSize is above 10 (it is ${params.deliverBatchSize})`,
  ),
)

/**
 * Pure: every problem with `raw` (the resolved `param:` values), one line each naming the
 * parameter, its value and what is allowed, and the derived settings (a refused number counts as
 * its least allowed value there).
 */
export const checkDeployParams = (raw: RawParams): { problems: string[]; derived: DerivedDeploySettings } => {
  // Every checked name present, so a parameter serverless.yml lacks reads as undefined, not as a missing key.
  const given = Object.fromEntries(CHECKED_PARAMS.map((name) => [name, raw[name]]))
  const result = v.safeParse(DEPLOY_PARAMS, given)
  // In the parameters' order, whether a rule is a parameter's own or one between parameters.
  const order = (issue: v.BaseIssue<unknown>) =>
    CHECKED_PARAMS.indexOf(v.getDotPath(issue) as (typeof CHECKED_PARAMS)[number])
  const issues = [...(result.issues ?? [])].sort((a, b) => order(a) - order(b))
  const problems = issues.map((issue) => {
    const name = v.getDotPath(issue) ?? 'parameters'
    return `${name} "${text(raw[name])}": ${issue.message}`
  })
  const refused = new Set(issues.map((issue) => v.getDotPath(issue)))
  const number = (name: (typeof CHECKED_PARAMS)[number], least: number) =>
    refused.has(name) ? least : Number(text(raw[name]))

  const queueType: QueueType = text(raw.queueType) === 'fifo' ? 'fifo' : 'standard'
  const window = number('deliverBatchingWindowSeconds', 0)
  // A FIFO event source takes no batching window: the template leaves it out there.
  const effectiveWindow = queueType === 'fifo' ? 0 : window
  const reserved = (name: (typeof CHECKED_PARAMS)[number]): ReservedConcurrency =>
    text(raw[name]) === '' || refused.has(name)
      ? {}
      : { ReservedConcurrentExecutions: Number(text(raw[name])) }
  const orDefault = (name: (typeof CHECKED_PARAMS)[number], fallback: number) =>
    text(raw[name]) === '' || refused.has(name) ? fallback : Number(text(raw[name]))
  const audiencesTimeout = orDefault('audiencesTimeoutSeconds', AUDIENCES_DEFAULTS.timeoutSeconds)
  const audiencesWindow = orDefault(
    'audiencesBatchingWindowSeconds',
    AUDIENCES_DEFAULTS.batchingWindowSeconds,
  )
  return {
    problems,
    derived: {
      eventsVisibilityTimeout:
        6 * number('deliverTimeoutSeconds', MIN_DELIVER_TIMEOUT_SECONDS) + effectiveWindow,
      audiencesVisibilityTimeout: 6 * audiencesTimeout + audiencesWindow,
      deliverEventSourceProperties: { MaximumBatchingWindowInSeconds: queueType === 'fifo' ? null : window },
      ingestFunctionProperties: reserved('ingestReservedConcurrency'),
      deliverFunctionProperties: reserved('deliverReservedConcurrency'),
      audiencesFunctionProperties: reserved('audiencesReservedConcurrency'),
      httpApiStageProperties: {
        DefaultRouteSettings: {
          DetailedMetricsEnabled: false,
          ThrottlingBurstLimit: number('httpApiBurstLimit', 1),
          ThrottlingRateLimit: number('httpApiRateLimit', 1),
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
