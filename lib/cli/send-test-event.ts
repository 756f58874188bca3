import { randomUUID } from 'node:crypto'
import { sign } from '../signature.ts'
import { parseFlags, runCli } from './args.ts'

/**
 * `npm run send-test-event -- --url <u> [--secret <s>] [--token <t>] [--type T] [--batch N]`:
 * posts a Segment-shaped event exactly as Segment's webhook does (Content-Type, User-Agent,
 * X-Signature over JSON.stringify of the event, or of the first element of a batch) and prints
 * the answer. Also builds the ready-to-paste curl `npm start` prints.
 */

export type TestEventType = 'identify' | 'track' | 'group' | 'delete'

export interface TestEventOptions {
  readonly type?: TestEventType
  readonly userId?: string
}

export const buildTestEvent = (options: TestEventOptions = {}): Record<string, unknown> => {
  const type = options.type ?? 'identify'
  const now = new Date().toISOString()
  const common = {
    type,
    messageId: `relay-test-${randomUUID()}`,
    userId: options.userId ?? 'relay-test-user',
    anonymousId: randomUUID(),
    timestamp: now,
    sentAt: now,
    receivedAt: now,
    context: { library: { name: 'analytics.js', version: '2.11.1' }, ip: '203.0.113.7' },
    integrations: {},
  }
  if (type === 'identify') return { ...common, traits: { email: 'test@example.com', name: 'Relay Test' } }
  if (type === 'track')
    return { ...common, event: 'Order Completed', properties: { orderId: 'o-1', revenue: 42 } }
  if (type === 'group') return { ...common, groupId: 'relay-test-group', traits: { name: 'Relay Test Inc' } }
  return common
}

/** The headers Segment's webhook sends for `body`, signed over what Segment signs. */
export const segmentHeaders = (
  body: unknown,
  credentials: { secret?: string | undefined; token?: string | undefined },
): Record<string, string> => {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'Segment.io/1.0',
  }
  const signed = Array.isArray(body) ? body[0] : body
  if (credentials.secret) headers['x-signature'] = sign(credentials.secret, JSON.stringify(signed))
  if (credentials.token) headers.authorization = `Bearer ${credentials.token}`
  return headers
}

export const sendTestEvent = async (
  url: string,
  body: unknown,
  credentials: { secret?: string | undefined; token?: string | undefined },
): Promise<{ status: number; text: string }> => {
  const response = await fetch(url, {
    method: 'POST',
    headers: segmentHeaders(body, credentials),
    body: JSON.stringify(body),
  })
  return { status: response.status, text: await response.text() }
}

/** Single-quotes a word for POSIX shells: '…' with each ' written as '"'"'. */
const shellQuote = (text: string) => `'${text.replace(/'/g, `'"'"'`)}'`

/** A curl command line that posts `event` as Segment does (signed when a secret is given). */
export const curlCommand = (
  url: string,
  secret: string | undefined,
  event: unknown,
  token?: string | undefined,
): string => {
  const headers = segmentHeaders(event, { secret, token })
  const lines = [`curl -sS -X POST ${shellQuote(url)}`]
  for (const [name, value] of Object.entries(headers)) lines.push(`  -H ${shellQuote(`${name}: ${value}`)}`)
  lines.push(`  --data-raw ${shellQuote(JSON.stringify(event))}`)
  return lines.join(' \\\n')
}

const USAGE = `usage: npm run send-test-event -- --url <webhook url> [--secret <shared secret>] [--token <ingest token>]
                                 [--type identify|track|group|delete] [--user-id <id>] [--batch <n>]`

export const main = async (argv: string[]): Promise<number> => {
  const values = parseFlags(
    argv,
    {
      url: { type: 'string' },
      secret: { type: 'string' },
      token: { type: 'string' },
      type: { type: 'string' },
      'user-id': { type: 'string' },
      batch: { type: 'string' },
    },
    USAGE,
  )
  if (typeof values === 'number') return values
  const type = (values.type ?? 'identify') as string
  const batch = values.batch === undefined ? undefined : Number(values.batch)
  if (
    typeof values.url !== 'string' ||
    !['identify', 'track', 'group', 'delete'].includes(type) ||
    (batch !== undefined && !(Number.isInteger(batch) && batch > 0))
  ) {
    console.error(USAGE)
    return 2
  }
  const make = () =>
    buildTestEvent({ type: type as TestEventType, userId: values['user-id'] as string | undefined })
  const body = batch === undefined ? make() : Array.from({ length: batch }, make)
  const answer = await sendTestEvent(values.url, body, {
    secret: values.secret as string | undefined,
    token: values.token as string | undefined,
  })
  console.log(`${answer.status} ${answer.text}`)
  return answer.status >= 200 && answer.status < 300 ? 0 : 1
}

if (import.meta.main) await runCli(main)
