import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../../lib/config.ts'
import { createIngestHandler, type IngestHandler } from '../../lib/ingest/handler.ts'
import { toHttpApiEvent } from '../../lib/local/http-event.ts'
import { createLambdaContext } from '../../lib/local/lambda-context.ts'
import { SEGMENT_EVENT_TYPES } from '../../lib/segment/event.ts'
import { sign } from '../../lib/segment/signature.ts'
import { peek, startTestQueues, type TestQueues } from '../support/queues.ts'

/**
 * Property tests of the front door: whatever arrives, the handler answers (never throws),
 * never answers 5xx for bad input while SQS is healthy, never enqueues anything from an
 * unauthenticated request, and accounts for every item of an authenticated one.
 */

const SECRET = 'fuzz-secret'
const TOKEN = 'fuzz-token'
const RUNS = Number(process.env.FUZZ_RUNS ?? 150)

let queues: TestQueues
let handler: IngestHandler

const queued = () => peek(queues, queues.queueUrl).length + peek(queues, queues.dlqUrl).length

const call = async (body: Buffer, headers: Record<string, string>) => {
  const event = toHttpApiEvent({ method: 'POST', path: '/segment', headers, body })
  const response = await handler(event, createLambdaContext('ingest', 6_000))
  return {
    status: response.statusCode as number,
    body: JSON.parse(response.body as string) as Record<string, unknown>,
  }
}

beforeAll(async () => {
  queues = await startTestQueues()
  handler = createIngestHandler({
    config: parseConfig({
      QUEUE_URL: queues.queueUrl,
      DLQ_URL: queues.dlqUrl,
      SEGMENT_SHARED_SECRET: SECRET,
      INGEST_TOKEN: TOKEN,
      MAX_BODY_BYTES: '65536',
    }),
    sqs: queues.sqs,
  })
})
afterAll(async () => {
  await queues.stop()
})

const bodies = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }).map((s) => Buffer.from(s, 'utf8')),
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
  fc.json({ maxDepth: 4 }).map((s) => Buffer.from(s, 'utf8')),
  fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify({ batch: [v] }) ?? '', 'utf8')),
)

const headerSets = fc.record(
  {
    'content-type': fc.constantFrom('application/json', 'text/plain', 'application/octet-stream', ''),
    'x-signature': fc.oneof(
      fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), maxLength: 40 }),
      fc.string({ maxLength: 60 }),
    ),
    authorization: fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constant('Bearer '),
      fc.constant(`Bearer ${TOKEN}x`),
    ),
    'user-agent': fc.constant('Segment.io/1.0'),
  },
  { requiredKeys: ['content-type'] },
)

describe('ingest under arbitrary input', () => {
  it('never throws, never answers 5xx, and never enqueues for an unauthenticated request', async () => {
    await fc.assert(
      fc.asyncProperty(bodies, headerSets, async (body, headers) => {
        const before = queued()
        const answer = await call(body, headers)
        expect(answer.status).toBe(401)
        expect(typeof answer.body.error).toBe('string')
        expect(queued()).toBe(before)
      }),
      { numRuns: RUNS },
    )
  })

  it('answers every authenticated body with 200, 400 or 413 and accounts for every item', async () => {
    await fc.assert(
      fc.asyncProperty(bodies, fc.boolean(), async (body, useSignature) => {
        // Both credentials are configured, so both are sent; the content type varies.
        const headers: Record<string, string> = {
          'content-type': useSignature ? 'application/json' : 'application/octet-stream',
          'x-signature': sign(SECRET, body.toString('utf8')),
          authorization: `Bearer ${TOKEN}`,
        }
        const answer = await call(body, headers)
        expect([200, 400, 413]).toContain(answer.status)
        if (answer.status === 200) {
          const rejected = answer.body.rejected as unknown[]
          expect(Number(answer.body.accepted) + rejected.length).toBeGreaterThan(0)
        }
      }),
      { numRuns: RUNS },
    )
  })

  it('queues every valid event with any unicode content so that it parses back deep-equal', async () => {
    const events = fc.record({
      type: fc.constantFrom(...SEGMENT_EVENT_TYPES),
      messageId: fc.string({ minLength: 1, maxLength: 90 }),
      userId: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
      event: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
      groupId: fc.string({ minLength: 1, maxLength: 10 }),
      previousId: fc.string({ minLength: 1, maxLength: 10 }),
      traits: fc.dictionary(fc.string({ unit: 'grapheme' }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }),
    })
    // Distinct messageIds, also across runs: a FIFO queue drops a repeat within 5 minutes (Segment
    // dedupes on messageId too), and emptying the queue between runs does not end that window.
    let run = 0
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(events, { minLength: 1, maxLength: 12, selector: (e) => e.messageId }),
        async (generated) => {
          run++
          const batch = generated.map((e) => ({ ...e, messageId: `${run}:${e.messageId}` }))
          queues.server.reset()
          const body = Buffer.from(JSON.stringify(batch), 'utf8')
          const answer = await call(body, {
            authorization: TOKEN,
            'x-signature': sign(SECRET, body.toString('utf8')),
          })
          expect(answer).toEqual({ status: 200, body: { accepted: batch.length, rejected: [] } })
          const stored = peek(queues, queues.queueUrl).map((m) => JSON.parse(m.body))
          expect(stored).toHaveLength(batch.length)
          expect(stored).toEqual(expect.arrayContaining(batch.map((e) => JSON.parse(JSON.stringify(e)))))
        },
      ),
      { numRuns: Math.ceil(RUNS / 3) },
    )
  })
})
