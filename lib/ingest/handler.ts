import type { Logger } from '@aws-lambda-powertools/logger'
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware'
import type { Metrics } from '@aws-lambda-powertools/metrics'
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware'
import type { SQSClient } from '@aws-sdk/client-sqs'
import middy from '@middy/core'
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda'
import { type Config, parseConfig } from '../config.ts'
import { createSqsClient } from '../queue/sqs-client.ts'
import { createLogger, createMetrics } from '../telemetry.ts'
import { userKeySecretLoader } from '../user-key.ts'
import type { IngestCredentials } from './authenticate.ts'
import { ingest } from './ingest.ts'
import { jsonErrors, jsonResponse } from './json-errors.ts'
import { type AuthenticatedEvent, segmentAuth } from './segment-auth.ts'

/**
 * Assembles the ingest Lambda: configuration validated once at cold start, then per request
 * decode → authenticate → ingest, with every error turned into Segment's JSON answer.
 * The local server (`npm start`) and the tests call this same handler.
 */

export interface IngestHandlerOptions {
  readonly config?: Config
  readonly sqs?: SQSClient
  readonly logger?: Logger
  readonly metrics?: Metrics
  readonly credentials?: () => Promise<IngestCredentials>
}

export type IngestHandler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>

export const createIngestHandler = (options: IngestHandlerOptions = {}): IngestHandler => {
  const config = options.config ?? parseConfig(process.env)
  const logger = options.logger ?? createLogger('ingest')
  const metrics = options.metrics ?? createMetrics(config.stage)
  const sqs = options.sqs ?? createSqsClient()
  const deps = { config, sqs, logger, metrics }

  return middy<AuthenticatedEvent, APIGatewayProxyStructuredResultV2>(
    async (event: AuthenticatedEvent, context: Context) =>
      jsonResponse(
        200,
        await ingest(deps, event.body ?? '', context.getRemainingTimeInMillis(), event.relayParse),
      ),
  )
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics))
    .use(jsonErrors(logger, metrics))
    .use(segmentAuth(config, logger, options.credentials))
    .use(userKeySecretLoader(config.secretsCacheSeconds)) as unknown as IngestHandler
}
