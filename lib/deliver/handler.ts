import type { Logger } from '@aws-lambda-powertools/logger'
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware'
import type { Metrics } from '@aws-lambda-powertools/metrics'
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware'
import type { SQSClient } from '@aws-sdk/client-sqs'
import middy from '@middy/core'
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda'
import type { Random } from '../backoff.ts'
import { type Config, courierAuthToken, parseConfig } from '../config.ts'
import { type CourierClient, createCourierClient } from '../courier/client.ts'
import { createDeletionMarks, type DeletionMarks } from '../deletion-marks.ts'
import { ConfigError } from '../errors/config-error.ts'
import { createSqsClient, SQS_TIMEOUTS, type SqsTimeouts } from '../queue/sqs-client.ts'
import { resolveSecret } from '../secrets.ts'
import { createLogger, createMetrics } from '../telemetry.ts'
import { userKeySecretLoader } from '../user-key.ts'
import { createDynamoDbClient } from './membership-ledger.ts'
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
  readonly random?: Random
  /** The timeouts `sqs` was created with (default SQS_TIMEOUTS): they size the margin kept to finish. */
  readonly sqsTimeouts?: SqsTimeouts
  /**
   * The deletion marks (default: AUDIENCE_TABLE_NAME's, with a client of its own). `false` turns the
   * erasure check off: only the benchmark's baseline does.
   */
  readonly deletionMarks?: DeletionMarks | false
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

const pacersFrom = (config: Config, logger: Logger, clock: Clock | undefined) =>
  createPacers(
    { maxRps: config.courier.maxRps, instances: config.delivery.eventSourceMaxConcurrency },
    {
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
  const table = config.queue.audienceTable
  if (table === undefined && options.deletionMarks === undefined) {
    throw new ConfigError(
      'AUDIENCE_TABLE_NAME',
      'is required by the deliver function (the deletion marks every event is checked against, whether or not audience lists are on)',
    )
  }
  const deletionMarks =
    options.deletionMarks === false
      ? undefined
      : (options.deletionMarks ?? createDeletionMarks(createDynamoDbClient(), table as string))
  const logger = options.logger ?? createLogger('deliver')
  const metrics = options.metrics ?? createMetrics(config.stage)
  const pacers = pacersFrom(config, logger, options.clock)
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
    deletionMarks,
  }
  return middy<SQSEvent, SQSBatchResponse>((event: SQSEvent, context: Context) =>
    deliverBatch(deps, event, context),
  )
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics))
    .use(userKeySecretLoader(config.secretsCacheSeconds)) as unknown as DeliverHandler
}
