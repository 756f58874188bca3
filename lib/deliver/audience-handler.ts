import type { Logger } from '@aws-lambda-powertools/logger'
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware'
import type { SQSClient } from '@aws-sdk/client-sqs'
import middy from '@middy/core'
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda'
import type { Random } from '../backoff.ts'
import { type Config, parseConfig } from '../config.ts'
import type { CourierClient } from '../courier/client.ts'
import { ConfigError } from '../errors/config-error.ts'
import { createSqsClient, SQS_TIMEOUTS, type SqsTimeouts } from '../queue/sqs-client.ts'
import { createLogger } from '../telemetry.ts'
import { userKeySecretLoader } from '../user-key.ts'
import { AUDIENCE_SYNC_INSTANCES, syncAudiences } from './audience-sync.ts'
import { courierFrom } from './handler.ts'
import { createDynamoDbClient, createMembershipLedger, type MembershipLedger } from './membership-ledger.ts'
import { createPacers, type PacerFor } from './pacer.ts'

/**
 * Assembles the audience list sync Lambda (lib/deliver/audience-sync.ts): configuration validated
 * once at cold start; one Courier client, one list-write pacer, one bounded SQS client and one
 * DynamoDB client for the membership ledger per instance. `npm start` and the tests call this same handler.
 */

export interface AudienceSyncHandlerOptions {
  readonly config?: Config
  readonly sqs?: SQSClient
  readonly courier?: CourierClient
  readonly logger?: Logger
  readonly pacerFor?: PacerFor
  readonly ledger?: MembershipLedger
  readonly sqsTimeouts?: SqsTimeouts
  readonly random?: Random
}

export type AudienceSyncHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>

/**
 * The pacers of the list sync, one per endpoint class, as deliver holds them (lib/deliver/pacer.ts):
 * the lists class starts at Courier's published 20 writes a minute split over the instances that
 * may run at once, spaced evenly, and learns from Courier's answers. COURIER_MAX_RPS is the
 * deliver fleet's budget and does not apply here: the list sync's writes are few and their limit
 * is published.
 */
export const listWritePacerFor = (instances = AUDIENCE_SYNC_INSTANCES): PacerFor =>
  createPacers({ maxRps: undefined, instances })

export const createAudienceSyncHandler = (options: AudienceSyncHandlerOptions = {}): AudienceSyncHandler => {
  const config = options.config ?? parseConfig(process.env)
  if (config.queue.audienceUrl === undefined) {
    throw new ConfigError('AUDIENCE_QUEUE_URL', 'is required by the audience list sync (the queue it drains)')
  }
  const table = config.queue.audienceTable
  if (table === undefined && options.ledger === undefined) {
    throw new ConfigError(
      'AUDIENCE_TABLE_NAME',
      'is required by the audience list sync (the DynamoDB table of the membership ledger)',
    )
  }
  const logger = options.logger ?? createLogger('audiences')
  const deps = {
    config,
    logger,
    // Bounded calls: the list sync keeps back enough of each invocation for them (listSyncMarginMs).
    sqs: options.sqs ?? createSqsClient({}, options.sqsTimeouts ?? SQS_TIMEOUTS),
    ...(options.sqsTimeouts === undefined ? {} : { sqsTimeouts: options.sqsTimeouts }),
    courier: options.courier ?? courierFrom(config),
    pacerFor: options.pacerFor ?? listWritePacerFor(),
    ledger: options.ledger ?? createMembershipLedger(createDynamoDbClient(), table as string),
    random: options.random ?? Math.random,
  }
  return middy<SQSEvent, SQSBatchResponse>((event: SQSEvent, context: Context) =>
    syncAudiences(deps, event, context),
  )
    .use(injectLambdaContext(logger))
    .use(userKeySecretLoader(config.secretsCacheSeconds)) as unknown as AudienceSyncHandler
}
