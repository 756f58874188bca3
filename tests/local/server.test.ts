import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  DEFAULTS,
  HTTP_API_EVENT_MIN_ENVELOPE_BYTES,
  LAMBDA_MAX_EVENT_BYTES,
  parseConfig,
} from '../../lib/config.ts'
import { createIngestHandler } from '../../lib/ingest/handler.ts'
import { lambdaEventBytes, toHttpApiEvent } from '../../lib/local/http-event.ts'
import { type LocalServer, startLocalServer } from '../../lib/local/server.ts'
import { segmentHeaders } from '../../lib/segment/test-event.ts'
import { createLogger } from '../../lib/telemetry.ts'
import { track } from '../support/fixtures.ts'
import { bodies, clearQueues, startTestQueues, type TestQueues } from '../support/queues.ts'

/**
 * Sizes as AWS has them: Lambda refuses an invocation whose event exceeds 6,291,456 bytes, and
 * the HTTP API event holds the body JSON-escaped (or base64) plus headers and context.
 */

const SECRET = 'size-secret'
const TOKEN = 'size-token'
let queues: TestQueues
let server: LocalServer

beforeAll(async () => {
  queues = await startTestQueues()
  const handler = createIngestHandler({
    config: parseConfig({
      QUEUE_URL: queues.queueUrl,
      DLQ_URL: queues.dlqUrl,
      SEGMENT_SHARED_SECRET: SECRET,
      INGEST_TOKEN: TOKEN,
      // Speed is not what is tested here.
      INGEST_DEADLINE_MS: '5000',
    }),
    sqs: queues.sqs,
    logger: createLogger('size-test'),
  })
  server = await startLocalServer(handler)
})
afterAll(async () => {
  await server.stop()
  await queues.stop()
})
beforeEach(() => clearQueues(queues))

/** An ordinary ~1.3 KB analytics.js track call: short quoted strings, as real ones are. */
const ordinaryEvent = (i: number) =>
  track({
    properties: {
      order_id: `order-${i}`,
      currency: 'USD',
      products: Array.from({ length: 7 }, (_, p) => ({
        product_id: `sku-${p}`,
        sku: `SKU-${p}`,
        category: 'Games',
        name: 'Monopoly',
        brand: 'Hasbro',
        variant: 'red',
        price: 19,
        quantity: 1,
      })),
    },
  })

const post = (events: unknown[], contentType = 'application/json') => {
  const headers = { ...segmentHeaders(events, { secret: SECRET, token: TOKEN }), 'content-type': contentType }
  return fetch(server.url, { method: 'POST', headers, body: JSON.stringify(events) })
}

describe('the local server applies Lambda’s event limit', () => {
  it('answers 413, naming the limit and the size, to 4,000 ordinary events whose body is under 6 MiB', async () => {
    // Prepare: Segment's largest batch of ~1.3 KB events
    const events = Array.from({ length: 4_000 }, (_, i) => ordinaryEvent(i))
    const bodyBytes = Buffer.byteLength(JSON.stringify(events))

    // Act
    const response = await post(events)
    const answer = (await response.json()) as { error: string }

    // Assess: the body alone would pass MAX_BODY_BYTES; the event Lambda would get does not
    expect(bodyBytes).toBeLessThan(DEFAULTS.MAX_BODY_BYTES)
    expect(bodyBytes / events.length).toBeGreaterThan(1_200)
    expect(response.status).toBe(413)
    expect(answer.error).toMatch(
      new RegExp(`^request is (\\d+) bytes .* \\(a ${bodyBytes}-byte body, JSON-escaped`),
    )
    expect(answer.error).toContain(`Lambda accepts at most ${LAMBDA_MAX_EVENT_BYTES}`)
    expect(Number(/^request is (\d+)/.exec(answer.error)?.[1])).toBeGreaterThan(LAMBDA_MAX_EVENT_BYTES)
    expect(bodies(queues, queues.queueUrl)).toEqual([])
  })

  it('counts a base64-encoded body at 4/3 of its size', async () => {
    const events = Array.from({ length: 3_600 }, (_, i) => ordinaryEvent(i))
    const bodyBytes = Buffer.byteLength(JSON.stringify(events))

    const response = await post(events, 'application/octet-stream')
    const answer = (await response.json()) as { error: string }

    expect(bodyBytes * (4 / 3)).toBeGreaterThan(LAMBDA_MAX_EVENT_BYTES)
    expect(response.status).toBe(413)
    expect(answer.error).toContain('base64-encoded')
  })

  it('fits a batch sized by the README rule (batch size × average event size ≤ 4,500,000 bytes), even base64-encoded', () => {
    // Prepare: as many ordinary events as the rule allows, with Segment's headers
    const probe = Buffer.byteLength(JSON.stringify(ordinaryEvent(0)))
    const events = Array.from({ length: Math.floor(4_500_000 / probe) }, (_, i) => ordinaryEvent(i))
    const body = Buffer.from(JSON.stringify(events))
    const headers = segmentHeaders(events, { secret: SECRET, token: TOKEN })

    // Act
    const asJson = toHttpApiEvent({ method: 'POST', path: '/segment', headers, body })
    const asBase64 = toHttpApiEvent({
      method: 'POST',
      path: '/segment',
      headers: { ...headers, 'content-type': 'application/octet-stream' },
      body,
    })

    // Assess
    expect(asBase64.isBase64Encoded).toBe(true)
    expect(lambdaEventBytes(asJson)).toBeLessThan(LAMBDA_MAX_EVENT_BYTES)
    expect(lambdaEventBytes(asBase64)).toBeLessThan(LAMBDA_MAX_EVENT_BYTES)
  })

  it('bases MAX_BODY_BYTES on the smallest event a body can travel in', () => {
    const bare = toHttpApiEvent({ method: 'POST', path: '/segment', headers: {}, body: Buffer.from('x') })

    const envelope = lambdaEventBytes(bare) - Buffer.byteLength('"x"')

    expect(envelope).toBeGreaterThanOrEqual(HTTP_API_EVENT_MIN_ENVELOPE_BYTES - 1)
    expect(DEFAULTS.MAX_BODY_BYTES).toBe(LAMBDA_MAX_EVENT_BYTES - HTTP_API_EVENT_MIN_ENVELOPE_BYTES)
  })
})
