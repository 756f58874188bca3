import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { LAMBDA_MAX_EVENT_BYTES } from '../config.ts'
import type { IngestHandler } from '../ingest/handler.ts'
import { lambdaEventBytes, toHttpApiEvent } from './http-event.ts'
import { createLambdaContext } from './lambda-context.ts'

/**
 * The local front door: each HTTP request becomes the API Gateway HTTP API event AWS would
 * build and goes to the same ingest handler the Lambda runs, so local and deployed
 * behaviour cannot drift. `POST /segment` is the webhook path in both.
 */

export const WEBHOOK_PATH = '/segment'
/**
 * API Gateway refuses payloads over 10 MB before Lambda sees them; so does this server.
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
 */
const MAX_REQUEST_BYTES = 10 * 1024 * 1024
const INGEST_TIMEOUT_MS = 6_000

const readBody = (request: IncomingMessage): Promise<Buffer | undefined> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    request.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= MAX_REQUEST_BYTES) chunks.push(chunk)
    })
    request.on('end', () => resolve(size > MAX_REQUEST_BYTES ? undefined : Buffer.concat(chunks)))
    request.on('error', reject)
  })

const send = (
  response: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
) => {
  response.writeHead(status, { 'content-type': 'application/json', ...headers })
  response.end(body)
}

/** An answer of one of the local relay's own pages (the status page and what it reads). */
export interface PageAnswer {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

/** The relay's own GET routes, beside the webhook: undefined when `url` is none of them. */
export type Pages = (url: URL) => PageAnswer | undefined | Promise<PageAnswer | undefined>

export interface LocalServer {
  readonly server: Server
  readonly url: string
  readonly port: number
  readonly stop: () => Promise<void>
  /** Webhook requests being answered now. */
  readonly inFlight: () => number
}

export const startLocalServer = async (
  handler: IngestHandler,
  port = 0,
  host = '127.0.0.1',
  pages?: Pages,
): Promise<LocalServer> => {
  let inFlight = 0
  const server = createServer(async (request, response) => {
    const url = URL.parse(request.url ?? '/', 'http://localhost') ?? new URL('http://localhost/')
    const webhook = url.pathname === WEBHOOK_PATH
    if (webhook) inFlight++
    try {
      const body = await readBody(request)
      if (body === undefined)
        return send(
          response,
          413,
          JSON.stringify({
            error: `request body is over ${MAX_REQUEST_BYTES} bytes, API Gateway's HTTP API payload limit`,
          }),
        )
      const page = request.method === 'GET' ? await pages?.(url) : undefined
      if (page !== undefined) {
        return send(response, page.status, page.body, {
          'content-type': page.contentType,
          'cache-control': 'no-store',
        })
      }
      if (url.pathname !== WEBHOOK_PATH || request.method !== 'POST') {
        return send(
          response,
          404,
          JSON.stringify({ error: `not found: send events with POST ${WEBHOOK_PATH}` }),
        )
      }
      const event = toHttpApiEvent({
        method: request.method,
        path: url.pathname,
        query: url.search.slice(1),
        headers: request.headers,
        body,
        sourceIp: request.socket.remoteAddress ?? '127.0.0.1',
      })
      // Lambda refuses an invocation whose whole event is over its limit, and the event carries
      // the body JSON-escaped (or base64: 4/3) plus headers and context: a body well under 6 MiB
      // can make too big an event. On AWS such a request never reaches the function (API Gateway
      // answers 413, which Segment drops); here it is refused the same way, saying why.
      const eventBytes = lambdaEventBytes(event)
      if (eventBytes > LAMBDA_MAX_EVENT_BYTES) {
        const encoding = event.isBase64Encoded ? 'base64-encoded' : 'JSON-escaped'
        return send(
          response,
          413,
          JSON.stringify({
            error:
              `request is ${eventBytes} bytes as the Lambda event API Gateway builds (a ${body.length}-byte body, ` +
              `${encoding}, with headers and context); Lambda accepts at most ${LAMBDA_MAX_EVENT_BYTES}: ` +
              'send fewer events per request',
          }),
        )
      }
      const result = await handler(event, createLambdaContext('ingest', INGEST_TIMEOUT_MS))
      const headers = Object.fromEntries(Object.entries(result.headers ?? {}).map(([k, v]) => [k, String(v)]))
      send(response, result.statusCode ?? 200, result.body ?? '', headers)
    } catch (error) {
      send(response, 500, JSON.stringify({ error: `local server: ${String(error)}` }))
    } finally {
      if (webhook) inFlight--
    }
  })
  // A port already taken is an 'error' event, not a throw: turn it into a rejection the caller can name.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port: bound } = server.address() as AddressInfo
  return {
    server,
    port: bound,
    url: `http://${host === '0.0.0.0' ? 'localhost' : host}:${bound}${WEBHOOK_PATH}`,
    inFlight: () => inFlight,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
