import type { Logger } from '@aws-lambda-powertools/logger'
import type { Metrics } from '@aws-lambda-powertools/metrics'
import type { MiddlewareObj } from '@middy/core'
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { isHttpError } from '../errors/http-error.ts'
import { addMetric } from '../telemetry.ts'

/**
 * Turns every error into the JSON answer Segment reads: an HttpError keeps its status and
 * message; anything unexpected becomes a 500 (Segment retries 5xx) without leaking internals.
 * Segment retries 408/429/5xx for up to 4 hours and discards other 4xx.
 * https://segment.com/docs/connections/destinations/#retries-between-segment-and-destinations
 */

export const jsonResponse = (statusCode: number, body: unknown): APIGatewayProxyStructuredResultV2 => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
})

export const jsonErrors = (
  logger: Logger,
  metrics?: Metrics,
): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> => ({
  onError: async (request) => {
    const { error } = request
    if (request.response !== undefined && request.response !== null && error === undefined) return
    addMetric(metrics, 'RequestsRefused', 1)
    if (isHttpError(error)) {
      if (error.statusCode >= 500) logger.error('request failed', { statusCode: error.statusCode, error })
      else logger.warn('request refused', { statusCode: error.statusCode, reason: error.message })
      request.response = jsonResponse(error.statusCode, { error: error.message, ...error.details })
      return
    }
    logger.error('unexpected error', { error: error as Error })
    request.response = jsonResponse(500, { error: 'internal error; the request can be retried' })
  },
})
