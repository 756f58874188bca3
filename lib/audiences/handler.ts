import type { Metrics } from '@aws-lambda-powertools/metrics'
import { parseConfig } from '../config.ts'
import { type CourierFunctionOptions, courierFrom } from '../courier/from-config.ts'
import { createPacers, type PacerFor } from '../courier/pacer.ts'
import { ConfigError } from '../errors/config-error.ts'
import { createSqsClient, SQS_TIMEOUTS, type SqsTimeouts } from '../queue/sqs-client.ts'
import { type SqsBatchHandler, sqsBatchFunction } from '../queue/sqs-function.ts'
import { createLogger, createMetrics } from '../telemetry.ts'
import { AUDIENCE_SYNC_INSTANCES, syncAudiences } from './list-sync.ts'
import { createDynamoDbClient, createMembershipLedger, type MembershipLedger } from './membership-ledger.ts'

/**
 * Assembles the audience list sync Lambda (lib/audiences/list-sync.ts): configuration validated
 * once at cold start; one Courier client, one list-write pacer, one bounded SQS client and one
 * DynamoDB client for the membership ledger per instance. `npm start` and the tests call this same handler.
 */

export interface AudienceSyncHandlerOptions extends CourierFunctionOptions {
  readonly ledger?: MembershipLedger
  /** The timeouts `sqs` is created with (default SQS_TIMEOUTS): they size the margin kept to finish. */
  readonly sqsTimeouts?: SqsTimeouts
}

export type AudienceSyncHandler = SqsBatchHandler

/**
 * The pacers of the list sync, one per endpoint class, as deliver holds them (lib/courier/pacer.ts):
 * the lists class starts at Courier's published 20 writes a minute split over the instances that
 * may run at once, spaced evenly, and learns from Courier's answers. COURIER_MAX_RPS is the
 * deliver fleet's budget and does not apply here: the list sync's writes are few and their limit
 * is published.
 */
export const listWritePacerFor = (instances = AUDIENCE_SYNC_INSTANCES) =>
  createPacers({ maxRps: undefined, instances })

/**
 * Deliver's metric names with a `relayFunction` dimension of their own, so the list sync's counts
 * never add to deliver's on the dashboard. https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Dimension
 */
const listSyncMetrics = (stage: string): Metrics => {
  const metrics = createMetrics(stage)
  metrics.setDefaultDimensions({ relayFunction: 'audiences' })
  return metrics
}

export const createAudienceSyncHandler = (options: AudienceSyncHandlerOptions = {}): AudienceSyncHandler => {
  const config = options.config ?? parseConfig(process.env)
  if (config.queue.audienceUrl === undefined) {
    throw new ConfigError('AUDIENCE_QUEUE_URL', 'is required by the audience list sync (the queue it drains)')
  }
  const table = config.audiences.table
  if (table === undefined && options.ledger === undefined) {
    throw new ConfigError(
      'AUDIENCE_TABLE_NAME',
      'is required by the audience list sync (the DynamoDB table of the membership ledger)',
    )
  }
  const logger = options.logger ?? createLogger('audiences')
  const metrics = options.metrics ?? listSyncMetrics(config.stage)
  const pacers = options.pacerFor === undefined ? listWritePacerFor() : undefined
  const deps = {
    config,
    logger,
    // Bounded calls: the list sync keeps back enough of each invocation for them (listSyncMarginMs).
    sqs: options.sqs ?? createSqsClient({}, options.sqsTimeouts ?? SQS_TIMEOUTS),
    ...(options.sqsTimeouts === undefined ? {} : { sqsTimeouts: options.sqsTimeouts }),
    courier: options.courier ?? courierFrom(config),
    metrics,
    pacerFor: options.pacerFor ?? (pacers as PacerFor),
    pacers: pacers?.active,
    ledger: options.ledger ?? createMembershipLedger(createDynamoDbClient(), table as string),
    random: options.random ?? Math.random,
  }
  return sqsBatchFunction((event, context) => syncAudiences(deps, event, context), {
    logger,
    metrics,
    secretsCacheSeconds: config.secretsCacheSeconds,
  })
}
