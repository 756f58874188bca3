import type { Logger } from '@aws-lambda-powertools/logger'
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware'
import type { SQSClient } from '@aws-sdk/client-sqs'
import middy from '@middy/core'
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda'
import type { Random } from '../backoff.ts'
import { type Config, parseConfig } from '../config.ts'
import { LIST_WRITES_PER_MINUTE } from '../courier/audience.ts'
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
import { createPacer, type PacerFor, unpaced } from './pacer.ts'

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
 * Courier's 20 list writes a minute, split over the instances that may run at once, spaced evenly:
 * the published limit is met by pacing rather than discovered by 429s.
 */
export const listWritePacerFor = (instances = AUDIENCE_SYNC_INSTANCES): PacerFor => {
  const lists = createPacer(LIST_WRITES_PER_MINUTE / 60 / instances)
  return (endpoint) => (endpoint === 'lists' ? lists : unpaced)
}

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
