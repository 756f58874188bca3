import fc from 'fast-check'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { parseConfig } from '../../lib/config.ts'
import { createIngestHandler, type IngestHandler } from '../../lib/ingest/handler.ts'
import { createLambdaContext } from '../../lib/local/lambda-context.ts'
import { type LocalServer, startLocalServer } from '../../lib/local/server.ts'
import {
  MAX_EVENTS_PER_REQUEST,
  MAX_JSON_DEPTH,
  MAX_LISTED_REJECTIONS,
  MAX_REASON_LENGTH,
} from '../../lib/segment/limits.ts'
import { sign } from '../../lib/segment/signature.ts'
import { createLogger } from '../../lib/telemetry.ts'
import { segmentRequest, track } from '../support/fixtures.ts'
import { clearQueues, peek, startTestQueues, type TestQueues } from '../support/queues.ts'

/**
 * Bounded work: whatever a body holds, the relay reads it at most once (depth-checked first),
 * answers with a bounded body, and never 500. 100,000 tiny events and 100,000 levels of nesting,
 * with and without credentials, in each auth mode, on the handler and on the local front door.
 */

const SECRET = 'limits-secret'
const TOKEN = 'limits-token'

const MODES = {
  open: {},
  signature: { SEGMENT_SHARED_SECRET: SECRET },
  token: { INGEST_TOKEN: TOKEN },
  both: { SEGMENT_SHARED_SECRET: SECRET, INGEST_TOKEN: TOKEN },
} as const
type Mode = keyof typeof MODES

let queues: TestQueues
const handlers = new Map<Mode, IngestHandler>()
let server: LocalServer

beforeAll(async () => {
  queues = await startTestQueues()
  for (const [mode, env] of Object.entries(MODES) as [Mode, Record<string, string>][]) {
    handlers.set(
      mode,
      createIngestHandler({
        // What is measured is the answer, not the speed: a loaded machine may need more than the
        // 3 s default deadline to store 4,000 events, so requests get as long as they need.
        config: parseConfig({
          QUEUE_URL: queues.queueUrl,
          DLQ_URL: queues.dlqUrl,
          INGEST_DEADLINE_MS: '30000',
          ...env,
        }),
        sqs: queues.sqs,
        logger: createLogger('limits-test'),
      }),
    )
  }
  server = await startLocalServer(handlers.get('signature') as IngestHandler)
})
afterAll(async () => {
  await server.stop()
  await queues.stop()
})
beforeEach(() => clearQueues(queues))

const stored = () => peek(queues, queues.queueUrl).length + peek(queues, queues.dlqUrl).length

type Credentials = 'valid' | 'wrong' | 'none'

const headersFor = (mode: Mode, credentials: Credentials, body: string): Record<string, string> => {
  if (credentials === 'none' || mode === 'open') return {}
  const headers: Record<string, string> = {}
  if (mode === 'signature' || mode === 'both') {
    headers['x-signature'] = sign(credentials === 'valid' ? SECRET : 'not-the-secret', body)
  }
  if (mode === 'token' || mode === 'both') {
    headers.authorization = `Bearer ${credentials === 'valid' ? TOKEN : 'not-the-token'}`
  }
  return headers
}

const invoke = async (mode: Mode, body: string, headers: Record<string, string>) => {
  const response = await (handlers.get(mode) as IngestHandler)(
    segmentRequest(body, { headers }),
    createLambdaContext('ingest', 60_000),
  )
  return { status: response.statusCode as number, text: response.body as string }
}

const MANY = 100_000
/** 100,000 tiny events in ~0.3 MB. */
const manyEvents = `[${Array.from({ length: MANY }, (_, i) => `{"i":${i}}`).join(',')}]`
const deepArrays = `${'['.repeat(MANY)}${']'.repeat(MANY)}`
const deepObjects = `${'{"a":'.repeat(MANY)}1${'}'.repeat(MANY)}`

describe('bodies no Segment request is: 100,000 events, 100,000 levels of nesting', () => {
  const cases = (['open', 'signature', 'token', 'both'] as const).flatMap((mode) =>
    (['valid', 'wrong', 'none'] as const)
      .filter((credentials) => mode !== 'open' || credentials === 'valid')
      .map((credentials) => [mode, credentials] as const),
  )

  it.each(cases)(
    'ingestAuth=%s, %s credentials: 401 without them, else 413 naming the limit; never 500',
    async (mode, credentials) => {
      for (const [body, limit] of [
        [manyEvents, new RegExp(`holds ${MANY} events; the most .* is ${MAX_EVENTS_PER_REQUEST}`)],
        [deepArrays, new RegExp(`deeper than ${MAX_JSON_DEPTH} levels`)],
        [deepObjects, new RegExp(`deeper than ${MAX_JSON_DEPTH} levels`)],
      ] as const) {
        // Act
        const answer = await invoke(mode, body, headersFor(mode, credentials, body))

        // Assess
        const authenticated = credentials === 'valid'
        expect(answer.status).toBe(authenticated ? 413 : 401)
        if (authenticated) expect(JSON.parse(answer.text).error).toMatch(limit)
        expect(answer.text.length).toBeLessThan(1_000)
      }
      expect(stored()).toBe(0)
    },
  )

  it('the same over HTTP on the local front door', async () => {
    for (const body of [manyEvents, deepArrays, deepObjects]) {
      const signed = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-signature': sign(SECRET, body) },
        body,
      })
      const unsigned = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-signature': sign('guess', body) },
        body,
      })
      expect([signed.status, unsigned.status]).toEqual([413, 401])
    }
    expect(stored()).toBe(0)
  })

  it(`takes exactly ${MAX_EVENTS_PER_REQUEST} events and refuses one more`, async () => {
    const events = (count: number) =>
      JSON.stringify(Array.from({ length: count }, (_, i) => track({ userId: `user-${i}` })))
    const over = events(MAX_EVENTS_PER_REQUEST + 1)

    const refused = await invoke('token', over, headersFor('token', 'valid', over))
    expect(stored()).toBe(0)
    const at = events(MAX_EVENTS_PER_REQUEST)
    const taken = await invoke('token', at, headersFor('token', 'valid', at))

    expect(refused.status).toBe(413)
    expect(taken.status).toBe(200)
    expect(JSON.parse(taken.text).accepted).toBe(MAX_EVENTS_PER_REQUEST)
  })
})

describe('nesting (property)', () => {
  /** A track event whose properties nest `depth` levels of objects or arrays. */
  const nested = (depth: number, arrays: boolean) => {
    const inner = arrays
      ? `${'['.repeat(depth)}1${']'.repeat(depth)}`
      : `${'{"k":'.repeat(depth)}1${'}'.repeat(depth)}`
    const event = JSON.stringify(track({ properties: { n: 0 } }))
    return event.replace('{"n":0}', inner)
  }

  it(`an event within ${MAX_JSON_DEPTH} levels (the event itself is one) is taken; a deeper one is 413; never 5xx`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 * MAX_JSON_DEPTH }),
        fc.boolean(),
        async (depth, arrays) => {
          const body = nested(depth, arrays)
          const answer = await invoke('open', body, {})
          // The event object is level 1, so its properties reach level depth + 1.
          expect(answer.status).toBe(depth + 1 <= MAX_JSON_DEPTH ? 200 : 413)
        },
      ),
      { numRuns: 60 },
    )
  })
})

describe('bounded answers', () => {
  it(`lists ${MAX_LISTED_REJECTIONS} rejections and counts the rest, keeping every one in the DLQ`, async () => {
    // Prepare: one valid event and 1,000 without a messageId
    const invalid = Array.from({ length: 1_000 }, (_, i) => ({ type: 'track', event: 'x', userId: `u-${i}` }))
    const body = JSON.stringify([track(), ...invalid])

    // Act
    const answer = await invoke('token', body, headersFor('token', 'valid', body))

    // Assess
    const json = JSON.parse(answer.text)
    expect(answer.status).toBe(200)
    expect(json.accepted).toBe(1)
    expect(json.rejected).toHaveLength(MAX_LISTED_REJECTIONS)
    expect(json.rejectedNotListed).toBe(1_000 - MAX_LISTED_REJECTIONS)
    expect(peek(queues, queues.dlqUrl)).toHaveLength(1_000)
  })

  it('cuts a reason that quotes a huge value, and a huge messageId, in the answer', async () => {
    const body = JSON.stringify([
      track(),
      { ...track(), type: 'x'.repeat(30_000) },
      { ...track(), messageId: 'm'.repeat(5_000) },
    ])

    const answer = await invoke('token', body, headersFor('token', 'valid', body))

    const { rejected } = JSON.parse(answer.text) as { rejected: { error: string; messageId?: string }[] }
    expect(answer.status).toBe(200)
    expect(rejected).toHaveLength(2)
    for (const rejection of rejected) {
      expect(rejection.error.length).toBeLessThanOrEqual(MAX_REASON_LENGTH)
      expect((rejection.messageId ?? '').length).toBeLessThanOrEqual(101)
    }
    expect(answer.text.length).toBeLessThan(2_000)
  })
})
