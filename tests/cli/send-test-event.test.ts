import { execFile } from 'node:child_process'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { main } from '../../lib/cli/send-test-event.ts'
import { parseConfig } from '../../lib/config.ts'
import { createIngestHandler } from '../../lib/ingest/handler.ts'
import { startLocalServer } from '../../lib/local/server.ts'
import { validateEvent } from '../../lib/segment/event.ts'
import { sign, verifySignature } from '../../lib/segment/signature.ts'
import {
  buildTestEvent,
  curlCommand,
  segmentHeaders,
  sendTestEvent,
  TEST_EVENT_TYPES,
} from '../../lib/segment/test-event.ts'
import { createLogger } from '../../lib/telemetry.ts'
import { bodies, startTestQueues, type TestQueues } from '../support/queues.ts'

const SECRET = 's3cret'

interface Seen {
  readonly method: string | undefined
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/** A plain HTTP server on loopback that records what arrives and answers `status`. */
const recorder = async (status = 200, answer = '{"accepted":1,"rejected":[]}') => {
  const seen: Seen[] = []
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      seen.push({
        method: request.method,
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      })
      response.writeHead(status, { 'content-type': 'application/json' }).end(answer)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/segment`
  return { seen, url, stop: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

const capture = () => {
  const out: string[] = []
  const err: string[] = []
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } }
}

describe('buildTestEvent', () => {
  it.each(TEST_EVENT_TYPES)('builds a %s event the relay itself accepts', (type) => {
    const event = buildTestEvent({ type, userId: 'user-42' })

    expect(validateEvent(event)).toMatchObject({ ok: true })
    expect(event).toMatchObject({ type, userId: 'user-42', integrations: {} })
    expect(event.context).toMatchObject({ library: { name: 'analytics.js' } })
    expect(Date.parse(String(event.timestamp))).toBeLessThanOrEqual(Date.parse(String(event.sentAt)))
    expect(Date.parse(String(event.sentAt))).toBeLessThanOrEqual(Date.parse(String(event.receivedAt)))
  })

  it('gives identify traits and track an Order Completed with properties', () => {
    expect(buildTestEvent({ type: 'identify' }).traits).toMatchObject({
      email: expect.any(String),
      name: expect.any(String),
    })
    expect(buildTestEvent({ type: 'track' })).toMatchObject({
      event: 'Order Completed',
      properties: { currency: 'USD' },
    })
    expect(buildTestEvent({ type: 'group' })).toMatchObject({
      groupId: expect.any(String),
      traits: expect.any(Object),
    })
    expect(buildTestEvent({ type: 'delete' })).not.toHaveProperty('traits')
  })

  it('gives every event its own messageId of at most 100 characters', () => {
    const ids = Array.from({ length: 50 }, () => buildTestEvent().messageId)

    expect(new Set(ids).size).toBe(50)
    expect(ids.every((id) => id.length <= 100)).toBe(true)
  })
})

describe('sendTestEvent', () => {
  it('posts one event as Segment does: its headers, JSON.stringify of the event, signed over that text', async () => {
    // Prepare
    const target = await recorder()
    const event = buildTestEvent({ type: 'track' })

    // Act
    const answer = await sendTestEvent(target.url, event, { secret: SECRET, token: 'tok' })
    await target.stop()

    // Assess
    expect(answer).toEqual({ status: 200, text: '{"accepted":1,"rejected":[]}' })
    const [request] = target.seen
    expect(request?.method).toBe('POST')
    expect(request?.body).toBe(JSON.stringify(event))
    expect(request?.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': 'Segment.io/1.0',
      authorization: 'Bearer tok',
      'x-signature': sign(SECRET, JSON.stringify(event)),
    })
    const raw = request?.body ?? ''
    expect(
      verifySignature(SECRET, request?.headers['x-signature'] as string, raw, () => JSON.parse(raw)),
    ).toBe(true)
  })

  it('posts a batch as a JSON array signed over its first element only, as Segment does', async () => {
    // Prepare
    const target = await recorder()
    const batch = [buildTestEvent({ type: 'identify' }), buildTestEvent({ type: 'track' })]

    // Act
    await sendTestEvent(target.url, batch, { secret: SECRET })
    await target.stop()

    // Assess
    const [request] = target.seen
    const signature = request?.headers['x-signature'] as string
    expect(request?.body).toBe(JSON.stringify(batch))
    expect(signature).toBe(sign(SECRET, JSON.stringify(batch[0])))
    expect(signature).not.toBe(sign(SECRET, JSON.stringify(batch)))
    const raw = request?.body ?? ''
    expect(verifySignature(SECRET, signature, raw, () => JSON.parse(raw))).toBe(true)
  })

  it('sends neither X-Signature nor Authorization without a secret or token', () => {
    expect(segmentHeaders(buildTestEvent())).toEqual({
      'content-type': 'application/json',
      'user-agent': 'Segment.io/1.0',
    })
  })

  describe('against the relay’s own ingest', () => {
    let queues: TestQueues
    let relay: Awaited<ReturnType<typeof startLocalServer>>
    beforeAll(async () => {
      queues = await startTestQueues()
      const handler = createIngestHandler({
        config: parseConfig({
          QUEUE_URL: queues.queueUrl,
          DLQ_URL: queues.dlqUrl,
          SEGMENT_SHARED_SECRET: SECRET,
        }),
        sqs: queues.sqs,
        logger: createLogger('send-test-event-test'),
      })
      relay = await startLocalServer(handler)
    })
    afterAll(async () => {
      await relay.stop()
      await queues.stop()
    })

    it('is accepted and queued byte-for-byte; a batch signed as Segment signs it, over its first event only, is refused with the secret alone', async () => {
      // Prepare
      const single = buildTestEvent({ type: 'identify' })
      const batch = TEST_EVENT_TYPES.map((type) => buildTestEvent({ type }))

      // Act
      const one = await sendTestEvent(relay.url, single, { secret: SECRET })
      const many = await sendTestEvent(relay.url, batch, { secret: SECRET })
      const unsigned = await sendTestEvent(relay.url, single, {})

      // Assess: the signature covers the single event; the batch's other events it does not cover
      expect(JSON.parse(one.text)).toEqual({ accepted: 1, rejected: [] })
      expect(many.status).toBe(401)
      expect(JSON.parse(many.text).error).toMatch(/Bearer/)
      expect(unsigned.status).toBe(401)
      expect(bodies(queues, queues.queueUrl)).toEqual([JSON.stringify(single)])
    })

    it('npm run send-test-event with no flags reaches it on PORT, signed with SEGMENT_SHARED_SECRET', async () => {
      // Prepare
      const { out, io } = capture()

      // Act
      const code = await main([], { ...io, env: { PORT: String(relay.port), SEGMENT_SHARED_SECRET: SECRET } })

      // Assess
      expect(code).toBe(0)
      expect(out).toEqual(['HTTP 200', '{"accepted":1,"rejected":[]}'])
      expect(bodies(queues, queues.queueUrl).map((body) => JSON.parse(body).userId)).toContain(
        'relay-test-user',
      )
    })
  })
})

describe('curlCommand', () => {
  const run = (command: string) => promisify(execFile)('bash', ['-c', command])

  it('sends the exact body with a valid signature and Segment’s headers when pasted into a shell', async () => {
    // Prepare: everything a shell could misread inside the JSON
    const target = await recorder()
    const event = {
      ...buildTestEvent({ type: 'identify' }),
      traits: {
        name: `O'Brien "quoted" $HOME \`date\` $(id) !! \\ \\n 'it''s'`,
        emoji: 'Zoë 🦄',
        line: 'a\nb\tc',
      },
    }

    // Act: asynchronously, since the server answering curl runs in this process
    const { stdout } = await run(curlCommand(target.url, SECRET, event, 'tok'))
    await target.stop()

    // Assess
    const [request] = target.seen
    expect(request?.body).toBe(JSON.stringify(event))
    expect(request?.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': 'Segment.io/1.0',
      authorization: 'Bearer tok',
    })
    const raw = request?.body ?? ''
    expect(
      verifySignature(SECRET, request?.headers['x-signature'] as string, raw, () => JSON.parse(raw)),
    ).toBe(true)
    expect(stdout).toContain('HTTP 200')
  })

  it('signs a batch over its first element, and sends no signature without a secret', async () => {
    const target = await recorder()
    const batch = [buildTestEvent({ type: 'track' }), buildTestEvent({ type: 'group' })]

    await run(curlCommand(target.url, SECRET, batch))
    await run(curlCommand(target.url, undefined, batch[0]))
    await target.stop()

    const [signed, plain] = target.seen
    expect(signed?.body).toBe(JSON.stringify(batch))
    expect(signed?.headers['x-signature']).toBe(sign(SECRET, JSON.stringify(batch[0])))
    expect(plain?.headers['x-signature']).toBeUndefined()
    expect(plain?.headers.authorization).toBeUndefined()
  })
})

describe('npm run send-test-event', () => {
  it('prints the status and the answer, and exits 0 on a 2xx', async () => {
    const target = await recorder(200, '{"accepted":3,"rejected":[]}')
    const { out, io } = capture()

    const code = await main(['--url', target.url, '--secret', SECRET, '--type', 'track', '--batch', '3'], io)
    await target.stop()

    expect(code).toBe(0)
    expect(out).toEqual(['HTTP 200', '{"accepted":3,"rejected":[]}'])
    const sent = JSON.parse(target.seen[0]?.body ?? '[]') as { type: string }[]
    expect(sent.map((event) => event.type)).toEqual(['track', 'track', 'track'])
  })

  it('exits 1 on a non-2xx answer, printing it', async () => {
    const target = await recorder(401, '{"error":"invalid signature"}')
    const { out, io } = capture()

    const code = await main(['--url', target.url, '--secret', 'wrong'], io)
    await target.stop()

    expect(code).toBe(1)
    expect(out).toEqual(['HTTP 401', '{"error":"invalid signature"}'])
  })

  it('names SEGMENT_SHARED_SECRET / --secret (and the token) after a 401, saying what was sent', async () => {
    const target = await recorder(401, '{"error":"missing signature"}')
    const { err, io } = capture()

    const code = await main(['--url', target.url], { ...io, env: {} })
    await target.stop()

    expect(code).toBe(1)
    expect(err).toEqual([
      'the relay refused the credentials (sent: none): set SEGMENT_SHARED_SECRET (or --secret) and/or INGEST_TOKEN (or --token) to the values the relay runs with',
    ])
  })

  it('exits 1 with the reason when nothing answers', async () => {
    const target = await recorder()
    await target.stop()
    const { err, io } = capture()

    const code = await main(['--url', target.url], io)

    expect(code).toBe(1)
    expect(err).toEqual([expect.stringMatching(/could not post to .+: ECONNREFUSED/)])
  })

  it.each([
    [
      ['--url', 'localhost:3000/segment'],
      '--url must be an http(s) URL such as http://127.0.0.1:3000/segment, got "localhost:3000/segment"',
    ],
    [['--type', 'page'], '--type must be one of identify, track, group, delete, got "page"'],
    [['--batch', '0'], '--batch must be a whole number ≥ 1, got "0"'],
    [['--url', 'http://x/segment', '--batch', 'two'], '--batch must be a whole number ≥ 1, got "two"'],
  ])('answers %j with what was wrong first, then the synopsis, and exit code 2', async (argv, problem) => {
    const { err, io } = capture()

    expect(await main(argv, io)).toBe(2)
    const lines = err.join('\n').split('\n')
    expect(lines[0]).toBe(`error: ${problem}`)
    expect(lines[1]).toMatch(/^usage: npm run send-test-event/)
    expect(lines.at(-1)).toBe('(--help explains every flag)')
  })

  it('says which flag it does not know', async () => {
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined)

    const code = await main(['--typ', 'track'], capture().io)

    const printed = consoleError.mock.calls.map((call) => String(call[0])).join('\n')
    consoleError.mockRestore()
    expect(code).toBe(2)
    expect(printed).toMatch(/^error: Unknown option '--typ'/)
  })

  describe('with no --url: the relay `npm start` runs on this machine', () => {
    it('posts to 127.0.0.1:$PORT/segment, signing with SEGMENT_SHARED_SECRET and sending INGEST_TOKEN', async () => {
      // Prepare
      const target = await recorder()
      const port = new URL(target.url).port
      const { out, io } = capture()

      // Act
      const code = await main(['--type', 'track'], {
        ...io,
        env: { PORT: port, SEGMENT_SHARED_SECRET: SECRET, INGEST_TOKEN: 'tok' },
      })
      await target.stop()

      // Assess
      expect(code).toBe(0)
      expect(out[0]).toBe('HTTP 200')
      const [request] = target.seen
      expect(request?.headers.authorization).toBe('Bearer tok')
      expect(request?.headers['x-signature']).toBe(sign(SECRET, request?.body ?? ''))
      expect(JSON.parse(request?.body ?? '{}')).toMatchObject({ type: 'track' })
    })

    it('lets the flags win over the environment', async () => {
      const target = await recorder()
      const { io } = capture()

      await main(['--secret', 'other'], {
        ...io,
        env: { PORT: new URL(target.url).port, SEGMENT_SHARED_SECRET: SECRET },
      })
      await target.stop()

      const [request] = target.seen
      expect(request?.headers['x-signature']).toBe(sign('other', request?.body ?? ''))
      expect(request?.headers.authorization).toBeUndefined()
    })

    it('asks whether `npm start` is running when nothing listens on PORT', async () => {
      const target = await recorder()
      await target.stop()
      const port = new URL(target.url).port
      const { err, io } = capture()

      const code = await main([], { ...io, env: { PORT: port } })

      expect(code).toBe(1)
      expect(err).toEqual([
        `could not post to http://127.0.0.1:${port}/segment: ECONNREFUSED (is \`npm start\` running on PORT=${port}?)`,
      ])
    })
  })

  it('runs under plain Node (type stripping) as the npm script does', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['lib/cli/send-test-event.ts', '--help'])

    expect(stdout).toContain('usage: npm run send-test-event')
  })
})
