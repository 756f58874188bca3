import type { Logger } from '@aws-lambda-powertools/logger'
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { type Config, parseConfig } from '../config.ts'
import { type CourierFunctionOptions, courierFrom } from '../courier/from-config.ts'
import { type Clock, createPacers } from '../courier/pacer.ts'
import { createDeletionMarks, type DeletionMarks } from '../deletion-marks.ts'
import { createDynamoDbClient } from '../dynamodb-client.ts'
import { ConfigError } from '../errors/config-error.ts'
import { createSqsClient, SQS_TIMEOUTS, type SqsTimeouts } from '../queue/sqs-client.ts'
import { type SqsBatchHandler, sqsBatchFunction } from '../queue/sqs-function.ts'
import { createLogger, createMetrics } from '../telemetry.ts'
import { deliverBatch } from './batch.ts'
import { createDeliverInstance } from './instance.ts'
import { createLearntRates, type LearntRates, shareLearntRates } from './learnt-rates.ts'

/**
 * Assembles the deliver Lambda: configuration validated once at cold start, one Courier client,
 * one SQS client and the instance's state (lib/deliver/instance.ts: the pacers, so the rate
 * learnt from Courier's answers carries over between invocations, seeded from and shared with
 * the rest of the fleet through lib/deliver/learnt-rates.ts). The local poller (`npm start`) and
 * the tests call this same handler.
 */

export interface DeliverHandlerOptions extends CourierFunctionOptions {
  /** The clock the adaptive pacers wait on (tests). */
  readonly clock?: Clock
  /** The timeouts `sqs` was created with (default SQS_TIMEOUTS): they size the margin kept to finish. */
  readonly sqsTimeouts?: SqsTimeouts
  /**
   * The deletion marks (default: AUDIENCE_TABLE_NAME's, with a client of its own). `false` turns the
   * erasure check off: only the benchmark's baseline does.
   */
  readonly deletionMarks?: DeletionMarks | false
  /**
   * Where the fleet shares the rate it learnt (learnt-rates.ts); default the table
   * AUDIENCE_TABLE_NAME names, none without it; `null` shares nothing.
   */
  readonly learntRates?: LearntRates | null
}

export type DeliverHandler = SqsBatchHandler

const pacersFrom = (
  config: Config,
  logger: Logger,
  clock: Clock | undefined,
  fleet: Pick<ReturnType<typeof shareLearntRates>, 'fleetRate' | 'onLearnt'>,
) =>
  createPacers(
    { maxRps: config.courier.maxRps, instances: config.delivery.eventSourceMaxConcurrency },
    {
      fleetRate: fleet.fleetRate,
      ...(fleet.onLearnt === undefined ? {} : { onLearnt: fleet.onLearnt }),
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

/**
 * The deliver handler; `ready` settles (never rejects) once its init work has ended: the read of
 * the fleet's learnt rates, which the entry point awaits so Lambda's init phase includes it.
 */
export const createDeliverHandler = (
  options: DeliverHandlerOptions = {},
): DeliverHandler & { readonly ready: Promise<void> } => {
  const config = options.config ?? parseConfig(process.env)
  if (config.courier.audienceLists && config.queue.audienceUrl === undefined) {
    throw new ConfigError(
      'AUDIENCE_QUEUE_URL',
      'is required by the deliver function while COURIER_AUDIENCE_LISTS is on (the queue of the audience list sync)',
    )
  }
  const table = config.audiences.table
  if (table === undefined && options.deletionMarks === undefined) {
    throw new ConfigError(
      'AUDIENCE_TABLE_NAME',
      'is required by the deliver function (the deletion marks every event is checked against, whether or not audience lists are on)',
    )
  }
  // One DynamoDB client for the deletion marks and the learnt rates: the rates' read at init
  // leaves it connected for the first batch's read of the marks.
  const dynamodb = table === undefined ? undefined : createDynamoDbClient()
  const deletionMarks =
    options.deletionMarks === false
      ? undefined
      : (options.deletionMarks ?? createDeletionMarks(dynamodb as DynamoDBClient, table as string))
  const logger = options.logger ?? createLogger('deliver')
  const metrics = options.metrics ?? createMetrics(config.stage)
  const fleet = shareLearntRates(
    options.learntRates === undefined
      ? table === undefined
        ? null
        : createLearntRates(dynamodb as DynamoDBClient, table)
      : options.learntRates,
    logger,
  )
  const pacers = pacersFrom(config, logger, options.clock, fleet)
  const deps = {
    config,
    logger,
    metrics,
    // Bounded calls: the batch keeps back enough of each invocation for them (finishMarginMs).
    sqs: options.sqs ?? createSqsClient({}, SQS_TIMEOUTS),
    sqsTimeouts: options.sqsTimeouts ?? SQS_TIMEOUTS,
    courier: options.courier ?? courierFrom(config),
    instance:
      options.pacerFor === undefined
        ? createDeliverInstance(pacers, pacers.active)
        : createDeliverInstance(options.pacerFor),
    random: options.random ?? Math.random,
    deletionMarks,
  }
  const handler = sqsBatchFunction((event, context) => deliverBatch(deps, event, context), {
    logger,
    metrics,
    secretsCacheSeconds: config.secretsCacheSeconds,
    middlewares: [fleet.middleware],
  })
  return Object.assign(handler, { ready: fleet.ready })
}
