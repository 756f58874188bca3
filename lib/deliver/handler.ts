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
import { ConfigError } from '../errors/config-error.ts'
import { createSqsClient, SQS_TIMEOUTS, type SqsTimeouts } from '../queue/sqs-client.ts'
import { resolveSecret } from '../secrets.ts'
import { createLogger, createMetrics } from '../telemetry.ts'
import { createPacer, type Pacer, perInstanceRate, unpaced } from './pacer.ts'
import { deliverBatch } from './worker.ts'

/**
 * Assembles the deliver Lambda: configuration validated once at cold start, one Courier
 * client, one SQS client and one pacer per instance (reused while the instance is warm).
 * The local poller (`npm start`) and the tests call this same handler.
 */

export interface DeliverHandlerOptions {
  readonly config?: Config
  readonly sqs?: SQSClient
  readonly courier?: CourierClient
  readonly logger?: Logger
  readonly metrics?: Metrics
  readonly pacer?: Pacer
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

const pacerFrom = (config: Config): Pacer =>
  config.courier.maxRps === undefined
    ? unpaced
    : createPacer(perInstanceRate(config.courier.maxRps, config.delivery.eventSourceMaxConcurrency))

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
  const deps = {
    config,
    logger,
    metrics,
    // Bounded calls: the worker keeps back enough of each invocation for them (finishMarginMs).
    sqs: options.sqs ?? createSqsClient({}, SQS_TIMEOUTS),
    sqsTimeouts: options.sqsTimeouts ?? SQS_TIMEOUTS,
    courier: options.courier ?? courierFrom(config),
    pacer: options.pacer ?? pacerFrom(config),
    random: options.random ?? Math.random,
  }
  return middy<SQSEvent, SQSBatchResponse>((event: SQSEvent, context: Context) =>
    deliverBatch(deps, event, context),
  )
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics)) as unknown as DeliverHandler
}
