import type { Logger } from '@aws-lambda-powertools/logger'
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware'
import type { Metrics } from '@aws-lambda-powertools/metrics'
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware'
import type { SQSClient } from '@aws-sdk/client-sqs'
import middy, { type MiddlewareObj } from '@middy/core'
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda'
import type { Random } from '../backoff.ts'
import { type Config, courierAuthToken, parseConfig } from '../config.ts'
import { type CourierClient, createCourierClient } from '../courier/client.ts'
import type { EndpointClass } from '../courier/endpoint-class.ts'
import { ConfigError } from '../errors/config-error.ts'
import { createSqsClient, SQS_TIMEOUTS, type SqsTimeouts } from '../queue/sqs-client.ts'
import { resolveSecret } from '../secrets.ts'
import { createLogger, createMetrics } from '../telemetry.ts'
import { userKeySecretLoader } from '../user-key.ts'
import { type LearntRates, learntRatesIn } from './learnt-rates.ts'
import { type Clock, createPacers, type PacerFor } from './pacer.ts'
import { deliverBatch } from './worker.ts'

/**
 * Assembles the deliver Lambda: configuration validated once at cold start, one Courier
 * client, one SQS client and one pacer per endpoint class per instance (reused while the
 * instance is warm, so the rate learnt from Courier's answers carries over between invocations).
 * The local poller (`npm start`) and the tests call this same handler.
 */

export interface DeliverHandlerOptions {
  readonly config?: Config
  readonly sqs?: SQSClient
  readonly courier?: CourierClient
  readonly logger?: Logger
  readonly metrics?: Metrics
  /** Replaces the instance's adaptive pacers (tests). */
  readonly pacerFor?: PacerFor
  /** The clock the adaptive pacers wait on (tests). */
  readonly clock?: Clock
  /**
   * Where the fleet shares the rate it learnt (learnt-rates.ts); default the table AUDIENCE_TABLE_NAME
   * names, none without it; `null` shares nothing.
   */
  readonly learntRates?: LearntRates | null
  readonly random?: Random
  /** The timeouts `sqs` was created with (default SQS_TIMEOUTS): they size the margin kept to finish. */
  readonly sqsTimeouts?: SqsTimeouts
}

export type DeliverHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>

export const courierFrom = (config: Config): CourierClient => {
  const ref = courierAuthToken(config)
  return createCourierClient({
    baseUrl: config.courier.baseUrl,
    timeoutMs: config.courier.timeoutMs,
    authToken: async () =>
      (await resolveSecret('COURIER_AUTH_TOKEN', ref, config.secretsCacheSeconds)) as string,
  })
}

const pacersFrom = (
  config: Config,
  logger: Logger,
  clock: Clock | undefined,
  fleet: Pick<Parameters<typeof createPacers>[1] & object, 'fleetRate' | 'onLearnt'>,
) =>
  createPacers(
    { maxRps: config.courier.maxRps, instances: config.delivery.eventSourceMaxConcurrency },
    {
      ...fleet,
      ...(clock === undefined ? {} : { clock }),
      onHalved: ({ endpointClass, from, to }) =>
        logger.warn('Courier is rate-limiting: the delivery rate halved', {
          endpointClass,
          fromRps: Number(from.toPrecision(3)),
          toRps: Number(to.toPrecision(3)),
          ceilingRps: config.courier.maxRps,
        }),
    },
  )

export const createDeliverHandler = (options: DeliverHandlerOptions = {}): DeliverHandler => {
  const config = options.config ?? parseConfig(process.env)
  if (config.courier.audienceLists && config.queue.audienceUrl === undefined) {
    throw new ConfigError(
      'AUDIENCE_QUEUE_URL',
      'is required by the deliver function while COURIER_AUDIENCE_LISTS is on (the queue of the audience list sync)',
    )
  }
  const logger = options.logger ?? createLogger('deliver')
  const metrics = options.metrics ?? createMetrics(config.stage)
  const table = config.queue.audienceTable
  const learnt =
    options.learntRates === undefined
      ? table === undefined
        ? null
        : learntRatesIn(table)
      : options.learntRates
  const fleet = shareLearntRates(learnt, logger)
  const pacers = pacersFrom(config, logger, options.clock, {
    fleetRate: fleet.fleetRate,
    onLearnt: fleet.onLearnt,
  })
  const deps = {
    config,
    logger,
    metrics,
    // Bounded calls: the worker keeps back enough of each invocation for them (finishMarginMs).
    sqs: options.sqs ?? createSqsClient({}, SQS_TIMEOUTS),
    sqsTimeouts: options.sqsTimeouts ?? SQS_TIMEOUTS,
    courier: options.courier ?? courierFrom(config),
    pacerFor: options.pacerFor ?? pacers,
    pacers: () => (options.pacerFor === undefined ? pacers.active() : []),
    random: options.random ?? Math.random,
  }
  return middy<SQSEvent, SQSBatchResponse>((event: SQSEvent, context: Context) =>
    deliverBatch(deps, event, context),
  )
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics))
    .use(userKeySecretLoader(config.secretsCacheSeconds))
    .use(fleet.middleware) as unknown as DeliverHandler
}

/** Kept back from the invocation's end when waiting for learnt-rate writes. */
const FLUSH_MARGIN_MS = 250

/**
 * The fleet's learnt rates for this instance: read before its first batch (a cold instance then
 * starts paced just under them instead of open), and what it learns written back before each
 * invocation ends (Lambda may freeze the instance once it has answered). A failed read or write
 * is logged and skipped: the instance then behaves as if nothing were shared.
 */
const shareLearntRates = (learnt: LearntRates | null, logger: Logger) => {
  let rates: ReadonlyMap<EndpointClass, number> | undefined
  const writes: Promise<void>[] = []
  // Never past the invocation's end: a write still pending then is left to finish (or fail, logged)
  // on its own, and the next change writes again; a timed-out invocation would bring its batch back.
  const flush = async (request: { context: Context }) => {
    const pending = Promise.all(writes.splice(0))
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, request.context.getRemainingTimeInMillis() - FLUSH_MARGIN_MS))
    })
    await Promise.race([pending, deadline])
    clearTimeout(timer)
  }
  return {
    fleetRate: (endpointClass: EndpointClass) => rates?.get(endpointClass),
    onLearnt:
      learnt === null
        ? undefined
        : ({ endpointClass, ratePerSecond }: { endpointClass: EndpointClass; ratePerSecond: number }) => {
            writes.push(
              learnt.write(endpointClass, ratePerSecond).catch((error: unknown) => {
                logger.warn('sharing the learnt Courier rate failed', {
                  endpointClass,
                  error: error as Error,
                })
              }),
            )
          },
    middleware: {
      before: async () => {
        if (rates !== undefined || learnt === null) return
        rates = await learnt.read().catch((error: unknown) => {
          logger.warn('reading the fleet’s learnt Courier rate failed: starting unpaced', {
            error: error as Error,
          })
          return new Map()
        })
      },
      after: flush,
      onError: flush,
    } satisfies MiddlewareObj<SQSEvent, SQSBatchResponse>,
  }
}
