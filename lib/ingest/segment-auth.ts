import type { Logger } from '@aws-lambda-powertools/logger'
import type { MiddlewareObj } from '@middy/core'
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import type { Config } from '../config.ts'
import { HttpError } from '../errors/http-error.ts'
import { resolveSecret } from '../secrets.ts'
import { decodeBody, eventCount, firstEventTexts, parseJson } from '../segment/request.ts'
import { authenticate, type IngestCredentials } from './authenticate.ts'

/**
 * Runs before the handler: decodes the body (API Gateway base64-encodes non-text payloads),
 * refuses one that is too big with 413, and refuses with 401 a request whose events are not all
 * covered by a credential, before anything is enqueued. An unauthenticated request costs at
 * most the body's bytes, one depth-bounded parse and a few HMACs, and is always answered 401.
 * Secrets come from SSM (cached) or the environment.
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
 */

/** The event as this middleware leaves it for the handler: the body's one parse travels with it. */
export type AuthenticatedEvent = APIGatewayProxyEventV2 & {
  relayAuth?: string
  relayParse?: () => unknown
}

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

/** `read` run at most once, its value or its error kept for every later call. */
const once = <T>(read: () => T): (() => T) => {
  let result: { value: T } | { error: unknown } | undefined
  return () => {
    result ??= (() => {
      try {
        return { value: read() }
      } catch (error) {
        return { error }
      }
    })()
    if ('error' in result) throw result.error
    return result.value
  }
}

/**
 * 401 for a batch of more than one event whose only credential is a signature over its first
 * event (how Segment's Actions webhooks sign a batch): anyone who saw one signed request could
 * put it first in a batch of their own, so none of the other events can be trusted, and keeping
 * them (even in the DLQ) would let a redrive deliver what no credential covered.
 */
const refuseUncoveredBatch = (count: number): never => {
  throw new HttpError(
    401,
    `X-Signature covers only the first of this batch's ${count} events (Segment signs a batch that way), so the others are not authenticated: configure INGEST_TOKEN, deploy with ingestAuth=both and add the mapping header Authorization: Bearer <token>, or turn batching off`,
  )
}

export const segmentAuth = (
  config: Config,
  logger: Logger,
  credentials: () => Promise<IngestCredentials> = () => loadCredentials(config),
): MiddlewareObj<AuthenticatedEvent, APIGatewayProxyStructuredResultV2> => {
  let warnedOpen = false
  return {
    before: async (request) => {
      const { event } = request
      const body = decodeBody(event.body, event.isBase64Encoded === true, config.ingest.maxBodyBytes)
      // One depth-bounded parse at most, shared by the signature check and ingest.
      const parse = once(() => parseJson(body))
      const candidates = {
        raw: body,
        parsed: once(() => {
          let parsed: unknown
          try {
            parsed = parse()
          } catch {
            return undefined
          }
          return { whole: JSON.stringify(parsed), firstEvent: firstEventTexts(body, parsed) }
        }),
      }
      const { method, previous, coverage } = authenticate(
        await credentials(),
        event.headers ?? {},
        candidates,
      )
      if (coverage.covers === 'first-event') {
        const count = eventCount(parse())
        if (count > 1) refuseUncoveredBatch(count)
      }
      // Covered by a signature over some other text than the raw body (the body re-serialised, or
      // the one event of a batch of one): that text is what is queued, so what Courier gets is
      // exactly what was signed, with no reading only the raw text has (such as extra digits).
      event.body = coverage.covers === 'request' ? body : coverage.signedText
      const signedParse = once(() => JSON.parse(event.body as string) as unknown)
      const read = coverage.covers === 'request' ? parse : signedParse
      event.isBase64Encoded = false
      event.relayAuth = method
      event.relayParse = read
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
