import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { APIGatewayProxyEventV2 } from 'aws-lambda'

/**
 * The API Gateway HTTP API (payload format 2.0) event for a request, the same shape a Lambda
 * Function URL sends, so the local server invokes the ingest handler exactly as AWS does:
 * lower-cased headers, the body base64-encoded unless it is text.
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html#http-api-develop-integrations-lambda.proxy-format
 */

const TEXT_TYPES = /^(application\/(json|[\w.+-]*\+json|x-www-form-urlencoded|xml)|text\/)/i

export interface HttpRequestShape {
  readonly method: string
  readonly path: string
  readonly query?: string
  readonly headers: IncomingHttpHeaders | Readonly<Record<string, string>>
  readonly body: Buffer
  readonly sourceIp?: string
}

export const toHttpApiEvent = (request: HttpRequestShape): APIGatewayProxyEventV2 => {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined)
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : String(value)
  }
  const isText = TEXT_TYPES.test(headers['content-type'] ?? '')
  const now = new Date()
  return {
    version: '2.0',
    routeKey: `${request.method} ${request.path}`,
    rawPath: request.path,
    rawQueryString: request.query ?? '',
    headers,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'localhost',
      http: {
        method: request.method,
        path: request.path,
        protocol: 'HTTP/1.1',
        sourceIp: request.sourceIp ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: `${request.method} ${request.path}`,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    body:
      request.body.length === 0
        ? undefined
        : isText
          ? request.body.toString('utf8')
          : request.body.toString('base64'),
    isBase64Encoded: request.body.length > 0 && !isText,
  }
}

/**
 * The size of the invocation payload Lambda would be given for `event`: the event as JSON, which
 * Lambda holds to its 6,291,456-byte limit.
 * https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
 */
export const lambdaEventBytes = (event: APIGatewayProxyEventV2): number =>
  Buffer.byteLength(JSON.stringify(event), 'utf8')
