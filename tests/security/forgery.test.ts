import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { parseConfig } from '../../lib/config.ts'
import { createIngestHandler, type IngestHandler } from '../../lib/ingest/handler.ts'
import { createLambdaContext } from '../../lib/local/lambda-context.ts'
import { type LocalServer, startLocalServer } from '../../lib/local/server.ts'
import { sign } from '../../lib/segment/signature.ts'
import { createLogger } from '../../lib/telemetry.ts'
import { deletion, identify, segmentRequest, track } from '../support/fixtures.ts'
import { bodies, clearQueues, startTestQueues, type TestQueues } from '../support/queues.ts'

/**
 * An attacker who saw one signed request (a single event, signed over the whole body as classic
 * Webhooks signs) re-posts its signature over a body of their own: the event inside an array, a
 * {"batch": […]} or Extensible Webhook wrappers, followed by a forged identify of another person
 * and a deletion of a third. In no auth mode may a forged event reach the queue, nor the DLQ
 * (a redrive would deliver it). Each case runs on the handler and over HTTP through the local
 * front door `npm start` serves.
 */

const SECRET = 'forgery-secret'
const TOKEN = 'forgery-token'
const WRONG_TOKEN = 'guessed-token'

let queues: TestQueues

const MODES = {
  signature: { SEGMENT_SHARED_SECRET: SECRET },
  token: { INGEST_TOKEN: TOKEN },
  both: { SEGMENT_SHARED_SECRET: SECRET, INGEST_TOKEN: TOKEN },
} as const
type Mode = keyof typeof MODES

const handlers = new Map<Mode, IngestHandler>()
const servers = new Map<Mode, LocalServer>()

beforeAll(async () => {
  queues = await startTestQueues()
  for (const [mode, env] of Object.entries(MODES) as [Mode, Record<string, string>][]) {
    const handler = createIngestHandler({
      config: parseConfig({ QUEUE_URL: queues.queueUrl, DLQ_URL: queues.dlqUrl, ...env }),
      sqs: queues.sqs,
      logger: createLogger('forgery-test'),
    })
    handlers.set(mode, handler)
    servers.set(mode, await startLocalServer(handler))
  }
})
afterAll(async () => {
  for (const server of servers.values()) await server.stop()
  await queues.stop()
})
beforeEach(() => clearQueues(queues))

type Via = 'handler' | 'http'

/** Posts `body` with these headers to the relay in `mode`, on the handler or over HTTP. */
const post = async (mode: Mode, via: Via, body: string, headers: Record<string, string>) => {
  if (via === 'handler') {
    const event = segmentRequest(body, { headers })
    const response = await (handlers.get(mode) as IngestHandler)(event, createLambdaContext('ingest', 6_000))
    return { status: response.statusCode as number, body: JSON.parse(response.body as string) }
  }
  const response = await fetch((servers.get(mode) as LocalServer).url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  })
  return { status: response.status, body: await response.json() }
}

/** The captured request: one genuine event and the headers Segment sent with it in `mode`. */
const captured = (mode: Mode) => {
  const text = JSON.stringify(identify({ userId: 'alice', traits: { email: 'alice@example.com' } }))
  const headers: Record<string, string> = {}
  if (mode !== 'token') headers['x-signature'] = sign(SECRET, text)
  return { text, headers }
}

const forgedIdentify = () =>
  JSON.stringify(identify({ userId: 'bob', traits: { email: 'attacker@evil.test' } }))
const forgedDelete = () => JSON.stringify(deletion({ userId: 'carol' }))

/** Bodies built around the captured event text. */
const FORGERIES: readonly [string, (genuine: string) => string][] = [
  ['an array', (genuine) => `[${genuine},${forgedIdentify()},${forgedDelete()}]`],
  ['an array with spacing', (genuine) => `[ ${genuine} ,\n ${forgedIdentify()} , ${forgedDelete()} ]`],
  ['a {"batch": […]}', (genuine) => `{"batch":[${genuine},${forgedIdentify()},${forgedDelete()}]}`],
  [
    'Extensible Webhook wrappers [{"json": …}]',
    (genuine) => `[{"json":${genuine}},{"json":${forgedIdentify()}},{"json":${forgedDelete()}}]`,
  ],
]

const storedTexts = () => [...bodies(queues, queues.queueUrl), ...bodies(queues, queues.dlqUrl)]

describe.each(['handler', 'http'] as const)('via the %s', (via) => {
  describe.each([
    ['signature', 'the captured signature'],
    ['both', 'the captured signature without the token'],
    ['token', 'the captured signature (the token is not known)'],
  ] as const)('ingestAuth=%s: forged events over %s', (mode: Mode, _what: string) => {
    it.each(FORGERIES)('refuses %s 401 and stores nothing', async (_, forge) => {
      // Prepare
      const { text, headers } = captured(mode)

      // Act
      const answer = await post(mode, via, forge(text), headers)

      // Assess
      expect(answer.status).toBe(401)
      expect(storedTexts()).toEqual([])
    })
  })

  it('ingestAuth=both: the captured signature with a guessed token is refused 401', async () => {
    const { text, headers } = captured('both')

    const answer = await post('both', via, `[${text},${forgedIdentify()}]`, {
      ...headers,
      authorization: `Bearer ${WRONG_TOKEN}`,
    })

    expect(answer).toEqual({ status: 401, body: { error: 'Authorization token does not match' } })
    expect(storedTexts()).toEqual([])
  })

  it('ingestAuth=signature: the 401 names the fix (the token), not a bad signature', async () => {
    const { text, headers } = captured('signature')

    const answer = await post('signature', via, `[${text},${forgedIdentify()}]`, headers)

    expect(answer.body.error).toMatch(/covers only the first of this batch's 2 events/)
    expect(answer.body.error).toMatch(/INGEST_TOKEN/)
    expect(answer.body.error).toMatch(/ingestAuth=both/)
  })

  it('ingestAuth=signature: the captured event alone, re-wrapped as a batch of one, is only ever that event', async () => {
    // Prepare: a replay in each wrapper; the key order and digits JSON.stringify would give back
    const { text, headers } = captured('signature')

    // Act
    const answers = []
    for (const body of [`[${text}]`, `{"batch":[${text}]}`, `[{"json":${text}}]`]) {
      answers.push((await post('signature', via, body, headers)).status)
    }

    // Assess: what is queued is exactly the signed text (the FIFO queue drops the repeats)
    expect(answers).toEqual([200, 200, 200])
    expect(new Set(bodies(queues, queues.queueUrl))).toEqual(new Set([text]))
  })

  it('ingestAuth=signature: a body that matches the signature only once re-serialised is queued as the signed text', async () => {
    // Prepare: a 20-digit userId; the forged text spells other digits that parse to the same double
    const signedText = (id: string) =>
      `{"type":"identify","messageId":"${id}","userId":12345678901234567000,"traits":{}}`
    const forgedText = (id: string) =>
      `{"type":"identify","messageId":"${id}","userId":12345678901234567891,"traits":{}}`
    expect(JSON.stringify(JSON.parse(forgedText('m')))).toBe(signedText('m'))
    const id = `m-${via}-${Math.random()}`

    // Act
    const single = await post('signature', via, forgedText(`${id}-1`), {
      'x-signature': sign(SECRET, signedText(`${id}-1`)),
    })
    const batchOfOne = await post('signature', via, `[${forgedText(`${id}-2`)}]`, {
      'x-signature': sign(SECRET, signedText(`${id}-2`)),
    })

    // Assess: the digits that reach the queue are those that were signed
    expect([single.status, batchOfOne.status]).toEqual([200, 200])
    expect(bodies(queues, queues.queueUrl).sort()).toEqual([signedText(`${id}-1`), signedText(`${id}-2`)])
  })

  it('ingestAuth=both: a genuine batch (signed over its first event, with the token) is taken whole', async () => {
    const events = [track(), identify(), track()]
    const texts = events.map((event) => JSON.stringify(event))

    const answer = await post('both', via, `[${texts.join(',')}]`, {
      'x-signature': sign(SECRET, texts[0] as string),
      authorization: `Bearer ${TOKEN}`,
    })

    expect(answer).toEqual({ status: 200, body: { accepted: 3, rejected: [] } })
    expect(bodies(queues, queues.queueUrl).sort()).toEqual([...texts].sort())
  })
})

describe('what a signature must look like', () => {
  it.each([
    ['garbage appended', (hex: string) => `${hex}zz`],
    ['hex digits appended', (hex: string) => `${hex}00`],
    ['one digit short', (hex: string) => hex.slice(0, 39)],
    ['a prefix', (hex: string) => `sha1=${hex}`],
  ])('refuses a valid signature with %s, before reading the body', async (_, mangle) => {
    const body = JSON.stringify(track())

    const answer = await post('signature', 'handler', body, { 'x-signature': mangle(sign(SECRET, body)) })

    expect(answer).toEqual({
      status: 401,
      body: { error: 'X-Signature must be 40 hexadecimal characters (HMAC-SHA1 of the body)' },
    })
    expect(storedTexts()).toEqual([])
  })

  it('takes a valid signature in upper case with surrounding spaces', async () => {
    const body = JSON.stringify(track())

    const answer = await post('signature', 'http', body, {
      'x-signature': `  ${sign(SECRET, body).toUpperCase()} `,
    })

    expect(answer).toEqual({ status: 200, body: { accepted: 1, rejected: [] } })
  })
})
