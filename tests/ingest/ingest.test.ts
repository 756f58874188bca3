import { createServer } from 'node:net'
import type { SQSClient } from '@aws-sdk/client-sqs'
import type { APIGatewayProxyEventV2 } from 'aws-lambda'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { parseConfig } from '../../lib/config.ts'
import { createIngestHandler, type IngestHandlerOptions } from '../../lib/ingest/handler.ts'
import { createLambdaContext } from '../../lib/local/lambda-context.ts'
import { createSqsClient } from '../../lib/queue/sqs-client.ts'
import { deriveMessageId } from '../../lib/segment/event.ts'
import { createLogger } from '../../lib/telemetry.ts'
import { deletion, group, identify, segmentRequest, track } from '../support/fixtures.ts'
import { bodies, clearQueues, receiveAll, startTestQueues, type TestQueues } from '../support/queues.ts'

const SECRET = 'segment-shared-secret'
const TOKEN = 'ingest-token'

let queues: TestQueues

const envFor = (q: { queueUrl: string; dlqUrl: string }, extra: Record<string, string> = {}) => ({
  QUEUE_URL: q.queueUrl,
  DLQ_URL: q.dlqUrl,
  SEGMENT_SHARED_SECRET: SECRET,
  INGEST_TOKEN: TOKEN,
  ...extra,
})

const handlerWith = (options: Partial<IngestHandlerOptions> & { env?: Record<string, string> } = {}) =>
  createIngestHandler({
    config: parseConfig(envFor(queues, options.env)),
    sqs: options.sqs ?? queues.sqs,
    logger: createLogger('ingest-test'),
    ...options,
  })

/**
 * A Webhooks (Actions) batch with this suite's secret and token: `body` (default: the events as
 * JSON), signed over its first event only, as Segment signs a batch.
 */
const batchRequest = (events: readonly unknown[], body = JSON.stringify(events)) =>
  segmentRequest(body, { secret: SECRET, token: TOKEN, signed: JSON.stringify(events[0]) })

const invoke = async (event: APIGatewayProxyEventV2, handler = handlerWith(), timeoutMs = 6_000) => {
  const response = await handler(event, createLambdaContext('ingest', timeoutMs))
  return { status: response.statusCode, body: JSON.parse(response.body ?? 'null') }
}

/** Counts SendMessageBatch calls made through a real client. */
const countBatchCalls = (sqs: SQSClient) => {
  const counter = { calls: 0 }
  sqs.middlewareStack.add(
    (next, context) => (args) => {
      if (context.commandName === 'SendMessageBatchCommand') counter.calls++
      return next(args)
    },
    { step: 'initialize', name: `count-${Math.random()}` },
  )
  return counter
}

beforeAll(async () => {
  queues = await startTestQueues()
})
afterAll(async () => {
  await queues.stop()
})
beforeEach(() => clearQueues(queues))

describe('accepting Segment requests', () => {
  it('queues a signed single event byte-for-byte, keeping its exact formatting', async () => {
    // Prepare: spacing and escapes JSON.stringify would not reproduce
    const event = identify({ traits: { name: 'Zoë \u2603', emoji: '🦄' } })
    const body = JSON.stringify(event, null, 2).replace('"Zoë', '"Zo\\u00eb')

    // Act
    const answer = await invoke(segmentRequest(body, { secret: SECRET, token: TOKEN }))

    // Assess
    expect(answer).toEqual({ status: 200, body: { accepted: 1, rejected: [] } })
    expect(bodies(queues, queues.queueUrl)).toEqual([body])
  })

  it('queues each element of a signed array (signature over the first element) byte-for-byte', async () => {
    const events = [identify(), track(), group()]
    const elements = events.map((event) => JSON.stringify(event))
    const body = `[ ${elements.join(' ,\n ')} ]`

    const answer = await invoke(batchRequest(events, body))

    expect(answer.body).toEqual({ accepted: 3, rejected: [] })
    expect(bodies(queues, queues.queueUrl).sort()).toEqual([...elements].sort())
  })

  it('queues a {batch: [...]} body and attaches type and messageId attributes', async () => {
    const events = [track(), identify()]
    const body = JSON.stringify({ batch: events, sentAt: '2026-11-28T12:00:00Z' })

    const answer = await invoke(segmentRequest(body, { secret: SECRET, token: TOKEN }))
    const messages = await receiveAll(queues.sqs, queues.queueUrl)

    expect(answer.body.accepted).toBe(2)
    expect(messages.map((m) => m.Body).sort()).toEqual(events.map((e) => JSON.stringify(e)).sort())
    const attributes = messages.map((m) => ({
      type: m.MessageAttributes?.type?.StringValue,
      messageId: m.MessageAttributes?.messageId?.StringValue,
    }))
    expect(attributes).toEqual(
      expect.arrayContaining(events.map((e) => ({ type: e.type, messageId: e.messageId }))),
    )
  })

  it('accepts a base64-encoded body from API Gateway', async () => {
    const body = JSON.stringify(track())
    const event = segmentRequest(body, { secret: SECRET, token: TOKEN, base64: true })
    const encoded = event.isBase64Encoded

    const answer = await invoke(event)

    expect(encoded).toBe(true)
    expect(answer.status).toBe(200)
    expect(bodies(queues, queues.queueUrl)).toEqual([body])
  })

  it('takes 4,000 events in exactly 400 SendMessageBatch calls when they fit the byte budget', async () => {
    const sqs = createSqsClient({ endpoint: queues.endpoint, region: 'us-east-1' })
    const counter = countBatchCalls(sqs)
    // 4,000 users, one event each: every call full, all in one wave
    const events = Array.from({ length: 4_000 }, (_, i) =>
      i % 2 ? track({ userId: `user-${i}` }) : identify({ userId: `user-${i}` }),
    )
    const body = JSON.stringify(events)

    // What is measured is the call count, not the speed: 400 calls on a loaded machine can outlast
    // the 3 s default deadline, so this request gets as long as it needs.
    const handler = handlerWith({ sqs, env: { INGEST_DEADLINE_MS: '30000' } })
    const response = await handler(batchRequest(events, body), createLambdaContext('ingest', 60_000))
    const answer = { body: JSON.parse(response.body ?? 'null') }

    expect(answer.body).toEqual({ accepted: 4_000, rejected: [] })
    expect(counter.calls).toBe(Math.ceil(4_000 / 10))
    expect(bodies(queues, queues.queueUrl)).toHaveLength(4_000)
    sqs.destroy()
  })

  it('packs by bytes when events are large: a 64 KiB budget holds fewer than 10 of 20 KB events', async () => {
    const sqs = createSqsClient({ endpoint: queues.endpoint, region: 'us-east-1' })
    const counter = countBatchCalls(sqs)
    const events = Array.from({ length: 30 }, () => track({ properties: { blob: 'x'.repeat(20_000) } }))

    const answer = await invoke(
      segmentRequest(JSON.stringify(events), { secret: SECRET, token: TOKEN }),
      handlerWith({ sqs, env: { SQS_BATCH_MAX_BYTES: String(64 * 1024) } }),
    )

    expect(answer.body.accepted).toBe(30)
    expect(counter.calls).toBe(10) // 3 events of ~20 KB per 64 KiB call
    sqs.destroy()
  })
})

describe('what Segment really sends per type', () => {
  it("accepts Segment's deletion notification (no messageId), queues its exact text and names its derived id", async () => {
    // Prepare: the classic Webhooks destination's notification, as its docs give it
    const body = '{"type":"delete","userId":"u-1","timestamp":"2026-11-28T12:00:00.276Z"}'

    // Act
    const answer = await invoke(segmentRequest(body, { secret: SECRET, token: TOKEN }))
    const [queued] = await receiveAll(queues.sqs, queues.queueUrl)

    // Assess
    expect(answer).toEqual({ status: 200, body: { accepted: 1, rejected: [] } })
    expect(queued?.Body).toBe(body)
    expect(queued?.MessageAttributes?.messageId?.StringValue).toBe(deriveMessageId(body))
  })

  it('accepts a numeric userId with no anonymousId, queued as sent', async () => {
    const body = JSON.stringify(identify({ userId: 12345, anonymousId: undefined }))

    const answer = await invoke(segmentRequest(body, { secret: SECRET, token: TOKEN }))

    expect(answer).toEqual({ status: 200, body: { accepted: 1, rejected: [] } })
    expect(bodies(queues, queues.queueUrl)).toEqual([body])
  })

  it('names a userId of the wrong type as what it is', async () => {
    const event = identify({ userId: true })

    const answer = await invoke(segmentRequest(JSON.stringify([event]), { secret: SECRET, token: TOKEN }))

    expect(answer.status).toBe(400)
    expect(answer.body.rejected).toEqual([
      { index: 0, messageId: event.messageId, error: 'userId must be a string or a number; got a boolean' },
    ])
  })
})

describe('Extensible Webhook batches', () => {
  it('unwraps [{"json": event}, …] signed over the first inner event, queueing each inner text exactly', async () => {
    // Prepare: performBatch's body, with the spacing JSON.stringify would not add
    const events = [identify(), track()]
    const inner = events.map((event) => JSON.stringify(event, null, 1))
    const body = `[${inner.map((text) => `{"json": ${text}}`).join(',')}]`

    // Act: signed over the first event's exact text (Segment's body is compact, so they are one)
    const answer = await invoke(
      segmentRequest(body, { secret: SECRET, token: TOKEN, signed: inner[0] as string }),
    )

    // Assess
    expect(answer).toEqual({ status: 200, body: { accepted: 2, rejected: [] } })
    expect(bodies(queues, queues.queueUrl).sort()).toEqual([...inner].sort())
  })

  it('rejects a form-encoded element with the setting to change, keeping the rest', async () => {
    const event = track()
    const body = JSON.stringify([{ json: event }, { body: 'type=track&event=Order%20Completed' }])

    const answer = await invoke(
      segmentRequest(body, { secret: SECRET, token: TOKEN, signed: JSON.stringify(event) }),
    )

    expect(answer.status).toBe(200)
    expect(answer.body.accepted).toBe(1)
    expect(answer.body.rejected).toEqual([
      { index: 1, error: expect.stringMatching(/form-encoded.*Content-Type header to application\/json/) },
    ])
    expect(bodies(queues, queues.dlqUrl)).toEqual(['{"body":"type=track&event=Order%20Completed"}'])
  })
})

describe('authentication', () => {
  it.each([
    ['a wrong signature', { secret: 'not-the-secret', token: TOKEN }],
    ['a signature over other bytes', { secret: SECRET, token: TOKEN, signed: '{"type":"track"}' }],
    ['a wrong token', { secret: SECRET, token: 'guess' }],
    ['no credentials', {}],
    ['a valid token beside a wrong signature', { token: TOKEN, headers: { 'x-signature': 'abcd' } }],
    ['a valid signature alone, when a token is configured too', { secret: SECRET }],
    ['a valid token alone, when a secret is configured too', { token: TOKEN }],
  ])('answers 401 to %s and enqueues nothing', async (_, options) => {
    const answer = await invoke(segmentRequest(JSON.stringify(track()), options))

    expect(answer.status).toBe(401)
    expect(answer.body.error).toEqual(expect.any(String))
    expect(bodies(queues, queues.queueUrl)).toEqual([])
    expect(bodies(queues, queues.dlqUrl)).toEqual([])
  })

  it('names both credentials when a relay that requires both gets neither', async () => {
    const answer = await invoke(segmentRequest(JSON.stringify(track())))

    expect(answer.status).toBe(401)
    expect(answer.body.error).toMatch(/X-Signature .* and Authorization: Bearer/)
  })

  it('accepts the previous secret and the previous token during a rotation, and nothing older', async () => {
    // Prepare: both credentials are being rotated
    const handler = handlerWith({
      env: {
        SEGMENT_SHARED_SECRET: 'new-secret',
        SEGMENT_SHARED_SECRET_PREVIOUS: SECRET,
        INGEST_TOKEN: 'new-token',
        INGEST_TOKEN_PREVIOUS: TOKEN,
      },
    })
    const body = JSON.stringify(track())

    // Act
    const old = await invoke(segmentRequest(body, { secret: SECRET, token: TOKEN }), handler)
    const renewed = await invoke(segmentRequest(body, { secret: 'new-secret', token: 'new-token' }), handler)
    const mixed = await invoke(segmentRequest(body, { secret: 'new-secret', token: TOKEN }), handler)
    const older = await invoke(segmentRequest(body, { secret: 'older-secret', token: 'new-token' }), handler)

    // Assess
    expect([old.status, renewed.status, mixed.status, older.status]).toEqual([200, 200, 200, 401])
    // Stored once: the FIFO queue drops the two repeats of the same messageId (as Segment's retry would be)
    expect(bodies(queues, queues.queueUrl)).toEqual([body])
  })

  it('answers 401, not 400, to an unauthenticated body that is not JSON', async () => {
    const answer = await invoke(segmentRequest('not json', { secret: 'wrong' }))
    expect(answer.status).toBe(401)
  })

  it('accepts a signature over the whole parsed body (the proposed Segment change)', async () => {
    const events = [track(), track()]
    const body = `[${events.map((e) => JSON.stringify(e, null, 1)).join(',')}]`

    const answer = await invoke(
      segmentRequest(body, { secret: SECRET, token: TOKEN, signed: JSON.stringify(events) }),
    )

    expect(answer.status).toBe(200)
  })

  it('accepts a bare or Bearer token when only INGEST_TOKEN is configured', async () => {
    const config = parseConfig({ QUEUE_URL: queues.queueUrl, DLQ_URL: queues.dlqUrl, INGEST_TOKEN: TOKEN })
    const handler = createIngestHandler({ config, sqs: queues.sqs })

    const bare = await invoke(
      segmentRequest(JSON.stringify(track()), { headers: { authorization: TOKEN } }),
      handler,
    )
    const bearer = await invoke(segmentRequest(JSON.stringify(track()), { token: TOKEN }), handler)

    expect([bare.status, bearer.status]).toEqual([200, 200])
  })

  it('is open when neither a secret nor a token is configured (local runs)', async () => {
    const config = parseConfig({ QUEUE_URL: queues.queueUrl, DLQ_URL: queues.dlqUrl })
    const handler = createIngestHandler({ config, sqs: queues.sqs })

    const answer = await invoke(segmentRequest(JSON.stringify(track())), handler)

    expect(answer.status).toBe(200)
  })
})

describe('bad input', () => {
  it('answers 400 to a body that is not JSON', async () => {
    const answer = await invoke(segmentRequest('{"type": "track",', { secret: SECRET, token: TOKEN }))
    expect(answer.status).toBe(400)
    expect(answer.body.error).toMatch(/not valid JSON/)
  })

  it.each(['', '42', '"text"', 'null'])('answers 400 to %j', async (body) => {
    const answer = await invoke(segmentRequest(body, { secret: SECRET, token: TOKEN }))
    expect(answer.status).toBe(400)
  })

  it('answers 413 to a body over MAX_BODY_BYTES before parsing it', async () => {
    const handler = handlerWith({ env: { MAX_BODY_BYTES: '2048' } })
    const answer = await invoke(
      segmentRequest(JSON.stringify(track({ pad: 'x'.repeat(3_000) })), { secret: SECRET, token: TOKEN }),
      handler,
    )

    expect(answer.status).toBe(413)
    expect(bodies(queues, queues.queueUrl)).toEqual([])
  })

  it('queues the valid events of a mixed request, answers the rest in `rejected`, and keeps them in the DLQ with reasons', async () => {
    // Prepare
    const good = [identify(), track()]
    const bad = [
      track({ event: undefined }),
      group({ groupId: '' }),
      { type: 'launch', messageId: 'm-launch', userId: 'u' },
      identify({ userId: undefined, anonymousId: undefined }),
      track({ messageId: 'x'.repeat(101) }),
      deletion({ userId: undefined }),
      'not an object',
    ]
    const body = JSON.stringify([good[0], ...bad, good[1]])

    // Act
    const answer = await invoke(segmentRequest(body, { secret: SECRET, token: TOKEN }))
    const dead = await receiveAll(queues.sqs, queues.dlqUrl)

    // Assess
    expect(answer.status).toBe(200)
    expect(answer.body.accepted).toBe(2)
    expect(answer.body.rejected.map((r: { index: number }) => r.index)).toEqual([1, 2, 3, 4, 5, 6, 7])
    expect(answer.body.rejected[0]).toEqual({
      index: 1,
      messageId: (bad[0] as { messageId: string }).messageId,
      error: 'track requires event (a non-empty string)',
    })
    expect(answer.body.rejected[2].error).toMatch(/^type must be one of identify, track/)
    expect(answer.body.rejected[3].error).toBe(
      'identify requires userId or anonymousId (a non-empty string or a number)',
    )
    expect(answer.body.rejected[4].error).toMatch(/at most 100 characters/)
    expect(answer.body.rejected[5].error).toBe('delete requires userId (a non-empty string or a number)')
    expect(bodies(queues, queues.queueUrl).sort()).toEqual(good.map((e) => JSON.stringify(e)).sort())
    expect(dead).toHaveLength(7)
    const reasons = Object.fromEntries(
      dead.map((m) => [m.Body, m.MessageAttributes?.reason?.StringValue] as const),
    )
    expect(reasons[JSON.stringify(bad[0])]).toBe('track requires event (a non-empty string)')
    expect(reasons['"not an object"']).toBe('event must be a JSON object')
    expect(dead.every((m) => m.MessageAttributes?.stage?.StringValue === 'ingest')).toBe(true)
  })

  it('answers 400 when no event is valid, and still keeps them in the DLQ', async () => {
    const answer = await invoke(
      segmentRequest(JSON.stringify([track({ event: '' })]), { secret: SECRET, token: TOKEN }),
    )

    expect(answer.status).toBe(400)
    expect(answer.body).toMatchObject({
      error: 'body holds no valid event',
      accepted: 0,
      rejected: [{ index: 0 }],
    })
    expect(bodies(queues, queues.dlqUrl)).toHaveLength(1)
    expect(bodies(queues, queues.queueUrl)).toEqual([])
  })

  it('rejects an event too large for one message, keeping a truncated copy in the DLQ', async () => {
    const handler = handlerWith({ env: { SQS_BATCH_MAX_BYTES: '4096' } })
    const big = track({ properties: { blob: 'y'.repeat(10_000) } })
    const small = track()

    const answer = await invoke(
      segmentRequest(JSON.stringify([big, small]), { secret: SECRET, token: TOKEN }),
      handler,
    )
    const [dead] = await receiveAll(queues.sqs, queues.dlqUrl)

    expect(answer.body.accepted).toBe(1)
    expect(answer.body.rejected).toEqual([
      {
        index: 0,
        messageId: big.messageId,
        error: expect.stringMatching(/one queue message holds at most 4096/),
      },
    ])
    expect(dead?.MessageAttributes?.truncated?.StringValue).toBe('true')
    expect(Number(dead?.MessageAttributes?.originalBytes?.StringValue)).toBe(JSON.stringify(big).length)
  })

  it('escapes characters SQS refuses without changing the event', async () => {
    const event = track({ properties: { odd: 'a\uFFFFb' } })
    const body = JSON.stringify(event)

    const answer = await invoke(segmentRequest(body, { secret: SECRET, token: TOKEN }))
    const [queued] = bodies(queues, queues.queueUrl)

    expect(answer.status).toBe(200)
    expect(queued).not.toBe(body)
    expect(JSON.parse(queued as string)).toEqual(event)
  })
})

describe("SQS's own rules", () => {
  it('queues an event whose messageId holds characters SQS refuses in attributes, with the attribute made safe', async () => {
    // Prepare: U+FFFF in the messageId (SQS refuses it in an attribute; a lone surrogate is refused at ingest)
    const event = track({ messageId: 'm-\uFFFF-x' })

    // Act
    const answer = await invoke(
      segmentRequest(JSON.stringify([event, track()]), { secret: SECRET, token: TOKEN }),
    )
    const queued = await receiveAll(queues.sqs, queues.queueUrl)

    // Assess
    expect(answer).toEqual({ status: 200, body: { accepted: 2, rejected: [] } })
    const attributes = queued.map((m) => m.MessageAttributes?.messageId?.StringValue)
    expect(attributes).toContain('m-\\uffff-x')
    expect(queued.map((m) => JSON.parse(m.Body as string).messageId)).toContain(event.messageId)
  })

  it('keeps an event SQS refuses for good (SenderFault) in the DLQ with the reason, answers 200, and queues the rest once', async () => {
    // Prepare: an events queue that holds smaller messages than the relay's budget, so the
    // emulator itself refuses the big event as SQS would
    const small = await startTestQueues({ maxMessageBytes: 4_096 })
    try {
      const handler = createIngestHandler({
        config: parseConfig(envFor(small)),
        sqs: small.sqs,
        logger: createLogger('ingest-test'),
      })
      const big = track({ properties: { blob: 'z'.repeat(6_000) } })
      const good = [identify(), track()]
      const body = JSON.stringify([good[0], big, good[1]])

      // Act
      const answer = await invoke(
        segmentRequest(body, { secret: SECRET, token: TOKEN, signed: JSON.stringify(good[0]) }),
        handler,
      )
      const dead = await receiveAll(small.sqs, small.dlqUrl)

      // Assess
      expect(answer.status).toBe(200)
      expect(answer.body).toEqual({
        accepted: 2,
        rejected: [
          {
            index: 1,
            messageId: big.messageId,
            error: expect.stringMatching(/^SQS refused it: InvalidParameterValue: .*shorter than 4096 bytes/),
          },
        ],
      })
      expect(bodies(small, small.queueUrl).sort()).toEqual(good.map((e) => JSON.stringify(e)).sort())
      expect(dead.map((m) => m.Body)).toEqual([JSON.stringify(big)])
      expect(dead[0]?.MessageAttributes?.reason?.StringValue).toMatch(/shorter than 4096 bytes/)
    } finally {
      await small.stop()
    }
  })

  it('answers 200 and logs the loss when even the DLQ refuses an event SQS refused (queues smaller than the budget)', async () => {
    // Prepare: both queues hold less than SQS_BATCH_MAX_BYTES, a misconfiguration the template
    // rules out (both are 1 MiB); retrying could never store the event
    const small = await startTestQueues({ maxMessageBytes: 4_096, dlqMaxMessageBytes: 4_096 })
    const errors: unknown[][] = []
    const logger = createLogger('ingest-test')
    logger.error = (...args: unknown[]) => {
      errors.push(args)
    }
    try {
      const handler = createIngestHandler({ config: parseConfig(envFor(small)), sqs: small.sqs, logger })
      const big = track({ properties: { blob: 'z'.repeat(6_000) } })
      const good = identify()
      const body = JSON.stringify([good, big])

      // Act
      const answer = await invoke(
        segmentRequest(body, { secret: SECRET, token: TOKEN, signed: JSON.stringify(good) }),
        handler,
      )

      // Assess: the good event is stored once, the big one is answered in `rejected` and logged
      // as not kept, and nothing asks Segment to resend the request
      expect(answer.status).toBe(200)
      expect(answer.body).toMatchObject({ accepted: 1, rejected: [{ index: 1, messageId: big.messageId }] })
      expect(bodies(small, small.queueUrl)).toEqual([JSON.stringify(good)])
      expect(bodies(small, small.dlqUrl)).toEqual([])
      expect(errors.map((args) => args[0])).toContain(
        'SQS refused dead letters even in plain ASCII; they are not kept',
      )
    } finally {
      await small.stop()
    }
  })
})

describe('when SQS fails', () => {
  it('retries entries SQS failed (throttled) until they land', async () => {
    // Prepare: a real client whose first SendMessageBatch has two entries throttled, as SQS does under load
    const sqs = createSqsClient({ endpoint: queues.endpoint, region: 'us-east-1' })
    let throttled = 0
    sqs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'SendMessageBatchCommand' || throttled > 0) return next(args)
        const input = args.input as { Entries: { Id: string }[] }
        const dropped = input.Entries.splice(0, 2)
        throttled = dropped.length
        const result = await next(args)
        ;(result.output as { Failed?: unknown[] }).Failed = dropped.map((entry) => ({
          Id: entry.Id,
          SenderFault: false,
          Code: 'ThrottlingException',
          Message: 'Rate exceeded',
        }))
        return result
      },
      { step: 'initialize', name: 'throttle-two-entries' },
    )
    const events = Array.from({ length: 5 }, () => track())

    // Act
    const answer = await invoke(
      segmentRequest(JSON.stringify(events), { secret: SECRET, token: TOKEN }),
      handlerWith({ sqs }),
    )

    // Assess
    expect(throttled).toBe(2)
    expect(answer.status).toBe(200)
    expect(bodies(queues, queues.queueUrl).sort()).toEqual(events.map((e) => JSON.stringify(e)).sort())
    sqs.destroy()
  })

  it('answers 503 within the deadline when SQS is unreachable', async () => {
    // Prepare: an endpoint where nothing listens
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number }
        server.close(() => resolve(port))
      })
    })
    const sqs = createSqsClient({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1' })
    const handler = handlerWith({ sqs, env: { INGEST_DEADLINE_MS: '400' } })

    // Act
    const started = Date.now()
    const answer = await invoke(
      segmentRequest(JSON.stringify(track()), { secret: SECRET, token: TOKEN }),
      handler,
    )
    const elapsed = Date.now() - started

    // Assess: Segment will retry a 503; the answer came in time for Segment's ~5 s wait
    expect(answer.status).toBe(503)
    expect(answer.body.error).toMatch(/retry/)
    expect(elapsed).toBeLessThan(4_000)
    sqs.destroy()
  })
})

describe('per-user order and deduplication on the FIFO queue', () => {
  /** The events queue's messages of one group, in the order SQS will hand them out. */
  const groupOrder = (group: string) => {
    const state = queues.server.inspectQueue(queues.queueUrl.split('/').pop() as string)
    return (state?.messages.ready ?? []).filter((m) => m.messageGroupId === group)
  }

  it('queues a user’s events in the order Segment sent them, bigger ones included, with group and deduplication ids', async () => {
    // Prepare: identify (small) before track (big), two users interleaved
    const events = [
      identify({ userId: 'ada' }),
      identify({ userId: 'bob' }),
      track({ userId: 'ada', properties: { blob: 'x'.repeat(20_000) } }),
      track({ userId: 'bob', properties: { blob: 'y'.repeat(10_000) } }),
    ]

    // Act
    const answer = await invoke(batchRequest(events))

    // Assess
    expect(answer.status).toBe(200)
    for (const user of ['ada', 'bob']) {
      const queued = groupOrder(`user:${user}`)
      expect(queued.map((m) => JSON.parse(m.body).messageId)).toEqual(
        events.filter((e) => e.userId === user).map((e) => e.messageId),
      )
      expect(queued.map((m) => m.messageDeduplicationId)).toEqual(
        events.filter((e) => e.userId === user).map((e) => `m:${e.messageId}`),
      )
    }
  })

  it('keeps the order of a user with more events than one call takes, across calls', async () => {
    const events = Array.from({ length: 25 }, (_, i) => track({ userId: 'busy', properties: { i } }))

    const answer = await invoke(batchRequest(events))

    expect(answer.status).toBe(200)
    expect(groupOrder('user:busy').map((m) => JSON.parse(m.body).properties.i)).toEqual(
      Array.from({ length: 25 }, (_, i) => i),
    )
  })

  it('enqueues nothing new when Segment retries the same request within five minutes', async () => {
    const body = JSON.stringify([identify({ userId: 'ada' }), track({ userId: 'ada' })])

    const first = await invoke(segmentRequest(body, { secret: SECRET, token: TOKEN }))
    const retry = await invoke(segmentRequest(body, { secret: SECRET, token: TOKEN }))

    expect([first.status, retry.status]).toEqual([200, 200])
    expect(retry.body).toEqual({ accepted: 2, rejected: [] })
    expect(bodies(queues, queues.queueUrl)).toHaveLength(2)
  })

  it('holds a user’s later events back behind one SQS did not take, and sends them after it', async () => {
    // Prepare: SQS throttles the first call; the user has 12 events, so 2 are in a later call
    const sqs = createSqsClient({ endpoint: queues.endpoint, region: 'us-east-1' })
    const sent: number[][] = []
    let throttled = false
    sqs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'SendMessageBatchCommand') {
          const entries = (args.input as { Entries: { MessageBody: string }[] }).Entries
          const indexes = entries.map((e) => JSON.parse(e.MessageBody).properties.i as number)
          if (!throttled && indexes.includes(0)) {
            throttled = true
            throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' })
          }
          sent.push(indexes)
        }
        return next(args)
      },
      { step: 'initialize', name: 'throttle-once' },
    )
    const events = Array.from({ length: 12 }, (_, i) => track({ userId: 'held', properties: { i } }))

    // Act
    const answer = await invoke(batchRequest(events), handlerWith({ sqs }))

    // Assess: 10 and 11 went only after 0-9 were taken, and the queue holds them in order
    expect(answer.status).toBe(200)
    expect(sent).toEqual([
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      [10, 11],
    ])
    expect(groupOrder('user:held').map((m) => JSON.parse(m.body).properties.i)).toEqual(
      Array.from({ length: 12 }, (_, i) => i),
    )
    sqs.destroy()
  })

  it('dead-letters a rejected event in its user’s group, and one without any id in a group of its own', async () => {
    const events = [
      { type: 'track', userId: 'ada', messageId: 'no-event-name' },
      { type: 'identify' },
      identify(),
    ]

    const answer = await invoke(batchRequest(events))

    expect(answer.status).toBe(200)
    const dlq = queues.server.inspectQueue(queues.dlqUrl.split('/').pop() as string)?.messages.ready ?? []
    expect(dlq.map((m) => m.messageGroupId).sort()).toEqual([
      expect.stringMatching(/^none#[0-9a-f]{64}$/),
      'user:ada',
    ])
    expect(dlq.every((m) => /^rejected:[0-9a-f]{64}$/.test(m.messageDeduplicationId ?? ''))).toBe(true)
  })
})
