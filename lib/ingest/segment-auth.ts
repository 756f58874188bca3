import type { Logger } from '@aws-lambda-powertools/logger'
import type { MiddlewareObj } from '@middy/core'
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import type { Config } from '../config.ts'
import { resolveSecret } from '../secrets.ts'
import { decodeBody } from '../segment/request.ts'
import { authenticate, type IngestCredentials } from './authenticate.ts'

/**
 * Runs before the handler: decodes the body (API Gateway base64-encodes non-text payloads),
 * refuses one that is too big with 413, and refuses an unauthenticated request with 401
 * before anything is parsed or enqueued. Secrets come from SSM (cached) or the environment.
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
 */

type Event = APIGatewayProxyEventV2 & { relayAuth?: string }

export const loadCredentials = async (config: Config): Promise<IngestCredentials> => {
  const [sharedSecret, token] = await Promise.all([
    resolveSecret('SEGMENT_SHARED_SECRET', config.ingest.sharedSecret, config.secretsCacheSeconds),
    resolveSecret('INGEST_TOKEN', config.ingest.token, config.secretsCacheSeconds),
  ])
  return { sharedSecret, token }
}

export const segmentAuth = (
  config: Config,
  logger: Logger,
  credentials: () => Promise<IngestCredentials> = () => loadCredentials(config),
): MiddlewareObj<Event, APIGatewayProxyStructuredResultV2> => {
  let warnedOpen = false
  return {
    before: async (request) => {
      const { event } = request
      const body = decodeBody(event.body, event.isBase64Encoded === true, config.ingest.maxBodyBytes)
      event.body = body
      event.isBase64Encoded = false
      const method = authenticate(await credentials(), event.headers ?? {}, body, () => JSON.parse(body))
      event.relayAuth = method
      if (method === 'open' && !warnedOpen) {
        warnedOpen = true
        logger.warn(
          'INGEST IS OPEN: neither SEGMENT_SHARED_SECRET nor INGEST_TOKEN is set, so anyone who knows the URL can post events',
        )
      }
    },
  }
}
