import type { Logger } from '@aws-lambda-powertools/logger'
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware'
import type { SQSClient } from '@aws-sdk/client-sqs'
import middy from '@middy/core'
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda'
import type { Random } from '../backoff.ts'
import { type Config, parseConfig } from '../config.ts'
import type { CourierClient } from '../courier/client.ts'
import { ConfigError } from '../errors/config-error.ts'
import { createSqsClient } from '../queue/sqs-client.ts'
import { createLogger } from '../telemetry.ts'
import {
  type AppliedChanges,
  AUDIENCE_SYNC_INSTANCES,
  createAppliedChanges,
  syncAudiences,
} from './audience-sync.ts'
import { courierFrom } from './handler.ts'
import { createPacers, type PacerFor } from './pacer.ts'

/**
 * Assembles the audience list sync Lambda (lib/deliver/audience-sync.ts): configuration validated
 * once at cold start; one Courier client, one list-write pacer and one memory of applied changes
 * per instance. `npm start` and the tests call this same handler.
 */

export interface AudienceSyncHandlerOptions {
  readonly config?: Config
  readonly sqs?: SQSClient
  readonly courier?: CourierClient
  readonly logger?: Logger
  readonly pacerFor?: PacerFor
  readonly applied?: AppliedChanges
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
  const logger = options.logger ?? createLogger('audiences')
  const deps = {
    config,
    logger,
    sqs: options.sqs ?? createSqsClient(),
    courier: options.courier ?? courierFrom(config),
    pacerFor: options.pacerFor ?? listWritePacerFor(),
    applied: options.applied ?? createAppliedChanges(),
    random: options.random ?? Math.random,
  }
  return middy<SQSEvent, SQSBatchResponse>((event: SQSEvent, context: Context) =>
    syncAudiences(deps, event, context),
  ).use(injectLambdaContext(logger)) as unknown as AudienceSyncHandler
}
