import { randomUUID } from 'node:crypto'
import type { APIGatewayProxyEventV2 } from 'aws-lambda'
import { toHttpApiEvent } from '../../lib/local/http-event.ts'
import type { SegmentEventType } from '../../lib/segment/event.ts'
import { sign } from '../../lib/segment/signature.ts'

/** Typed factories for Segment events and the API Gateway events that carry them. */

export type EventFixture = Record<string, unknown> & { type: string; messageId: string }

const base = (type: SegmentEventType, overrides: Record<string, unknown>): EventFixture => ({
  type,
  messageId: `ajs-next-${randomUUID()}`,
  userId: 'user-1',
  anonymousId: 'anon-1',
  timestamp: '2026-11-28T12:00:00.000Z',
  sentAt: '2026-11-28T12:00:00.100Z',
  receivedAt: new Date().toISOString(),
  context: { library: { name: 'analytics.js', version: '2.11.1' }, ip: '203.0.113.7' },
  integrations: {},
  ...overrides,
})

export const identify = (overrides: Record<string, unknown> = {}) =>
  base('identify', { traits: { email: 'ada@example.com', name: 'Ada Lovelace' }, ...overrides })

export const track = (overrides: Record<string, unknown> = {}) =>
  base('track', { event: 'Order Completed', properties: { orderId: 'o-1', revenue: 42.5 }, ...overrides })

export const group = (overrides: Record<string, unknown> = {}) =>
  base('group', { groupId: 'acme', traits: { name: 'Acme Inc', plan: 'enterprise' }, ...overrides })

export const page = (overrides: Record<string, unknown> = {}) => base('page', { name: 'Home', ...overrides })
export const screen = (overrides: Record<string, unknown> = {}) =>
  base('screen', { name: 'Home', ...overrides })
export const alias = (overrides: Record<string, unknown> = {}) =>
  base('alias', { previousId: 'anon-1', ...overrides })
export const deletion = (overrides: Record<string, unknown> = {}) => base('delete', overrides)

export interface RequestOptions {
  readonly secret?: string
  /** What the signature covers; Segment signs the first element of a batch. */
  readonly signed?: string
  readonly token?: string
  readonly headers?: Record<string, string>
  readonly base64?: boolean
}

/** The HTTP API event Segment's webhook produces for `body`, signed like Segment signs it. */
export const segmentRequest = (body: string, options: RequestOptions = {}): APIGatewayProxyEventV2 => {
  const headers: Record<string, string> = {
    'content-type': options.base64 ? 'application/octet-stream' : 'application/json',
    'user-agent': 'Segment.io/1.0',
    ...options.headers,
  }
  if (options.secret !== undefined) headers['x-signature'] = sign(options.secret, options.signed ?? body)
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  return toHttpApiEvent({ method: 'POST', path: '/segment', headers, body: Buffer.from(body, 'utf8') })
}

/** What Engage sends for an audience (Segment's classic destination format): `context.personas` names the computation. */
const personas = (key: string, id: string, computationClass = 'audience') => ({
  library: { name: 'analytics-node', version: '6.2.0' },
  personas: {
    computation_class: computationClass,
    computation_key: key,
    computation_id: id,
    space_id: 'spa_1',
  },
})

export interface AudienceFixture {
  readonly key?: string
  readonly id?: string
  readonly inAudience: boolean
  readonly userId?: string
  readonly timestamp?: string
  /** `audience` (the default) or `journey_step`: an Engage Journeys step sends the same calls. */
  readonly computationClass?: string
}

/** An audience change as identify with the boolean trait. */
export const audienceIdentify = (a: AudienceFixture, overrides: Record<string, unknown> = {}) => {
  const key = a.key ?? 'order_completed_last_30days'
  return identify({
    userId: a.userId ?? 'user-1',
    traits: { [key]: a.inAudience },
    context: personas(key, a.id ?? 'aud_1', a.computationClass),
    ...(a.timestamp === undefined ? {} : { timestamp: a.timestamp }),
    ...overrides,
  })
}

/** An audience change as track `Audience Entered` / `Audience Exited`. */
export const audienceTrack = (a: AudienceFixture, overrides: Record<string, unknown> = {}) => {
  const key = a.key ?? 'order_completed_last_30days'
  return track({
    event: a.inAudience ? 'Audience Entered' : 'Audience Exited',
    userId: a.userId ?? 'user-1',
    properties: { audience_key: key, [key]: a.inAudience },
    context: personas(key, a.id ?? 'aud_1', a.computationClass),
    ...(a.timestamp === undefined ? {} : { timestamp: a.timestamp }),
    ...overrides,
  })
}
