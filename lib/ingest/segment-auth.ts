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
  const { ingest, secretsCacheSeconds: maxAge } = config
  const [sharedSecret, token, previousSharedSecret, previousToken] = await Promise.all([
    resolveSecret('SEGMENT_SHARED_SECRET', ingest.sharedSecret, maxAge),
    resolveSecret('INGEST_TOKEN', ingest.token, maxAge),
    resolveSecret('SEGMENT_SHARED_SECRET_PREVIOUS', ingest.previousSharedSecret, maxAge),
    resolveSecret('INGEST_TOKEN_PREVIOUS', ingest.previousToken, maxAge),
  ])
  return { sharedSecret, token, previousSharedSecret, previousToken }
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
      const { method, previous } = authenticate(await credentials(), event.headers ?? {}, body, () =>
        JSON.parse(body),
      )
      event.relayAuth = method
      // During a rotation: the operator waits for these to stop before retiring the previous value.
      if (previous.length > 0) logger.info('request authenticated with a previous credential', { previous })
      if (method === 'open' && !warnedOpen) {
        warnedOpen = true
        logger.warn(
          'INGEST IS OPEN: neither SEGMENT_SHARED_SECRET nor INGEST_TOKEN is set, so anyone who knows the URL can post events',
        )
      }
    },
  }
}
