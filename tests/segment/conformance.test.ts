import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type LocalServer, startLocalServer } from '../../lib/local/server.ts'
import type { Poller } from '../../lib/local/sqs-poller.ts'
import { sign } from '../../lib/segment/signature.ts'
import { identify, track } from '../support/fixtures.ts'
import { clearQueues } from '../support/queues.ts'
import {
  dlqMessages,
  ingestHandlerFor,
  queuedMessages,
  startRelayPoller,
  startTestRelay,
  type TestRelay,
  until,
} from '../support/relay.ts'

/**
 * Conformance with what Segment really sends, end to end: each request goes over HTTP to the
 * local front door (the API Gateway event AWS builds), through the real ingest handler and the
 * embedded SQS, and the deliver function drains it into the Courier sandbox. Each case asserts
 * Segment's answer and the exact text Courier receives.
 *
 * Sources for the shapes:
 * - classic Webhooks: `User-Agent: Segment/version`, one event per POST, X-Signature over the
 *   JSON-stringified body, and the deletion notification {type, userId, timestamp}:
 *   https://segment.com/docs/connections/destinations/catalog/webhooks/
 * - Webhooks (Actions): `User-Agent: Segment (Actions)` (actions-core create-request-client.ts),
 *   the mapped data as JSON, a batch as an array signed over payload[0].data:
 *   https://github.com/segmentio/action-destinations/blob/main/packages/destination-actions/src/destinations/webhook/index.ts
 * - Extensible Webhook: a batch of {json: data}, signed over the first unwrapped data:
 *   https://github.com/segmentio/action-destinations/blob/main/packages/destination-actions/src/destinations/webhook-extensible/send/index.ts
 * - Engage audiences on the classic destination: identify with a boolean snake_cased trait,
 *   or track "Audience Entered"/"Audience Exited", both with context.personas:
 *   https://segment.com/docs/engage/audiences/send-audience-data/
 */

const SECRET = 'conformance-secret'
const CLASSIC = 'Segment/1.0'
const ACTIONS = 'Segment (Actions)'

let relay: TestRelay
let server: LocalServer
let poller: Poller

beforeAll(async () => {
  relay = await startTestRelay({ SEGMENT_SHARED_SECRET: SECRET })
  server = await startLocalServer(ingestHandlerFor(relay))
  poller = startRelayPoller(relay, { maxConcurrency: 1 })
})
afterAll(async () => {
  await poller.stop()
  await server.stop()
  await relay.stop()
})
beforeEach(() => {
  clearQueues(relay.queues)
  relay.sandbox.reset()
})

interface Post {
  readonly body: string
  /** The text the signature covers: the body unless Segment signs something else. */
  readonly signed?: string
  readonly userAgent: string
  readonly contentType?: string
}

const post = async ({ body, signed, userAgent, contentType }: Post) => {
  const response = await fetch(server.url, {
    method: 'POST',
    headers: {
      'content-type': contentType ?? 'application/json',
      'user-agent': userAgent,
      'x-signature': sign(SECRET, signed ?? body),
    },
    body,
  })
  return { status: response.status, json: await response.json() }
}

/** The exact text of each POST /inbound/segment Courier answered 2xx, once `count` arrived. */
const inboundTexts = async (count: number) => {
  const inbound = () => relay.sandbox.delivered().filter((r) => r.path === '/inbound/segment')
  await until(() => inbound().length >= count, 20_000, `${count} inbound calls`)
  return inbound().map((r) => r.text)
}

/** An audience's context.personas, as Engage sends it. */
const personas = {
  computation_class: 'audience',
  computation_id: 'aud_2kVq1Ilq2fJ4bF',
  computation_key: 'order_completed_last_30days',
  namespace: 'spa_9xWf2',
  space_id: 'spa_9xWf2',
}

describe('single events', () => {
  it.each([
    ['classic Webhooks', CLASSIC, identify()],
    ['Webhooks (Actions)', ACTIONS, track()],
  ])('%s: one event, signed over the body, reaches Courier byte-exact', async (_, userAgent, event) => {
    // Prepare
    const body = JSON.stringify(event)

    // Act
    const answer = await post({ body, userAgent })

    // Assess
    expect(answer).toEqual({ status: 200, json: { accepted: 1, rejected: [] } })
    expect(await inboundTexts(1)).toEqual([body])
  })

  it('the deletion notification (no messageId) deletes the person in Courier', async () => {
    const body = '{"type":"delete","userId":"u-1","timestamp":"2026-11-28T12:00:00.276Z"}'

    const answer = await post({ body, userAgent: CLASSIC })
    await until(
      () => relay.sandbox.delivered().some((r) => r.path === '/profiles/u-1'),
      20_000,
      'profile delete',
    )

    expect(answer).toEqual({ status: 200, json: { accepted: 1, rejected: [] } })
    const calls = relay.sandbox.received.map((r) => `${r.method} ${r.path}`)
    expect(calls).toContain('DELETE /profiles/u-1')
    expect(relay.sandbox.received.some((r) => r.path === '/inbound/segment')).toBe(false)
    expect(dlqMessages(relay)).toEqual([])
  })

  it('a retry of the deletion notification is stored once: its derived messageId is the FIFO deduplication id', async () => {
    // Prepare: Segment resends the same notification (same bytes) after a timeout
    const body = '{"type":"delete","userId":"u-2","timestamp":"2026-11-28T12:00:00.276Z"}'

    // Act
    const answers = [await post({ body, userAgent: CLASSIC }), await post({ body, userAgent: CLASSIC })]
    const deletes = () =>
      relay.sandbox.received.filter((r) => r.method === 'DELETE' && r.path === '/profiles/u-2')
    // Once the queue is empty every stored copy has been delivered (Courier is called before the
    // record is deleted), so a second stored copy would show as a second DELETE.
    await until(
      () => deletes().length > 0 && queuedMessages(relay).length === 0,
      20_000,
      'deletion delivered',
    )

    // Assess
    expect(answers.map((a) => a.status)).toEqual([200, 200])
    expect(deletes()).toHaveLength(1)
  })

  it('Engage audience identify (boolean trait, context.personas) reaches Courier byte-exact', async () => {
    const body = JSON.stringify(
      identify({ traits: { order_completed_last_30days: true }, context: { personas } }),
    )

    const answer = await post({ body, userAgent: CLASSIC })

    expect(answer.status).toBe(200)
    expect(await inboundTexts(1)).toEqual([body])
  })

  it('Engage audience track (Audience Entered) reaches Courier byte-exact', async () => {
    const body = JSON.stringify(
      track({
        event: 'Audience Entered',
        properties: { audience_key: 'order_completed_last_30days', order_completed_last_30days: true },
        context: { personas },
      }),
    )

    const answer = await post({ body, userAgent: CLASSIC })

    expect(answer.status).toBe(200)
    expect(await inboundTexts(1)).toEqual([body])
  })

  it('numeric ids: a numeric userId reaches Courier as sent; a 20-digit one deletes that exact profile', async () => {
    const numeric = JSON.stringify(identify({ userId: 12345, anonymousId: undefined }))
    const deletion = '{"type":"delete","userId":12345678901234567890,"timestamp":"2026-11-28T12:00:00Z"}'

    const answers = [
      await post({ body: numeric, userAgent: CLASSIC }),
      await post({ body: deletion, userAgent: CLASSIC }),
    ]
    const texts = await inboundTexts(1)
    await until(
      () => relay.sandbox.delivered().some((r) => r.path === '/profiles/12345678901234567890'),
      20_000,
      'profile delete',
    )

    expect(answers.map((a) => a.status)).toEqual([200, 200])
    expect(texts).toEqual([numeric])
  })

  it('\\u2028, \\u001b, emoji and a 20-digit integer reach Courier as the very bytes Segment sent', async () => {
    // Prepare: a raw U+2028 (JSON.stringify leaves it unescaped), an escaped ESC, an emoji and a
    // number no double can hold
    const event = track({ properties: { line: 'a\u2028b', esc: '\u001b[31m', emoji: '🦄👩‍👩‍👧' } })
    const body = JSON.stringify(event).replace('"properties":{', '"properties":{"big":12345678901234567890,')

    const answer = await post({ body, userAgent: ACTIONS })

    expect(answer.status).toBe(200)
    expect(body).toContain('\u2028')
    expect(body).toContain('\\u001b')
    expect(await inboundTexts(1)).toEqual([body])
  })

  it.each([
    ['text/plain', 'as text'],
    ['application/octet-stream', 'base64-encoded by API Gateway'],
  ])('a content type other than JSON (%s, %s) is read as the JSON it is', async (contentType) => {
    const body = JSON.stringify(identify())

    const answer = await post({ body, userAgent: ACTIONS, contentType })

    expect(answer).toEqual({ status: 200, json: { accepted: 1, rejected: [] } })
    expect(await inboundTexts(1)).toEqual([body])
  })
})

describe('batches', () => {
  const batch = () => [identify(), track(), identify({ traits: { plan: 'pro' } })]

  it('Webhooks (Actions) batch signed over the whole array (the proposed change): every event reaches Courier byte-exact', async () => {
    // Prepare
    const events = batch()
    const texts = events.map((event) => JSON.stringify(event))
    const body = `[${texts.join(',')}]`

    // Act
    const answer = await post({ body, signed: JSON.stringify(events), userAgent: ACTIONS })

    // Assess
    expect(answer).toEqual({ status: 200, json: { accepted: 3, rejected: [] } })
    expect((await inboundTexts(3)).sort()).toEqual([...texts].sort())
  })

  it.each([
    ['a Webhooks (Actions) batch', (texts: string[]) => `[${texts.join(',')}]`],
    ['an Extensible Webhook batch', (texts: string[]) => `[${texts.map((t) => `{"json":${t}}`).join(',')}]`],
  ])(
    '%s signed over its first event only (what Segment signs today) is refused 401 naming the token, with the secret alone',
    async (_, bodyOf) => {
      // Prepare: the signature says nothing about the second and third events
      const texts = batch().map((event) => JSON.stringify(event))

      // Act
      const answer = await post({ body: bodyOf(texts), signed: texts[0], userAgent: ACTIONS })

      // Assess: nothing stored anywhere, and the answer names the fix
      expect(answer.status).toBe(401)
      expect((answer.json as { error: string }).error).toMatch(
        /first of this batch's 3 events.*INGEST_TOKEN.*ingestAuth=both/,
      )
      expect(queuedMessages(relay)).toEqual([])
      expect(dlqMessages(relay)).toEqual([])
      expect(relay.sandbox.received).toEqual([])
    },
  )

  it('a batch of one event signed over that event is covered: it reaches Courier byte-exact', async () => {
    const text = JSON.stringify(track())

    const answer = await post({ body: `[${text}]`, signed: text, userAgent: ACTIONS })

    expect(answer).toEqual({ status: 200, json: { accepted: 1, rejected: [] } })
    expect(await inboundTexts(1)).toEqual([text])
  })

  it('a batch signed over its raw bytes (spacing JSON.stringify would not produce) reaches Courier byte-exact', async () => {
    const events = batch()
    const texts = events.map((event) => JSON.stringify(event, null, 2))
    const body = `[\n${texts.join(',\n')}\n]`

    const answer = await post({ body, userAgent: ACTIONS })

    expect(answer.status).toBe(200)
    expect((await inboundTexts(3)).sort()).toEqual([...texts].sort())
  })

  it('refuses a batch signed over its second element: Segment never signs that', async () => {
    const events = batch()

    const answer = await post({
      body: JSON.stringify(events),
      signed: JSON.stringify(events[1]),
      userAgent: ACTIONS,
    })

    expect(answer.status).toBe(401)
    expect(relay.sandbox.received).toEqual([])
  })
})
