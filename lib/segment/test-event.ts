import { randomUUID } from 'node:crypto'
import { sign } from './signature.ts'

/**
 * `npm run send-test-event -- --url <u> [--secret <s>] [--token <t>] [--type T] [--user-id <id>] [--batch N]`:
 * posts a Segment-shaped event exactly as Segment's webhook does, and prints the answer.
 *
 * Segment sends `Content-Type: application/json`, `User-Agent: Segment.io/1.0` (classic
 * Webhooks, every example request of its docs; Webhooks (Actions) sends `Segment (Actions)`,
 * segmentio/action-destinations `packages/core/src/create-request-client.ts`), the body as
 * `JSON.stringify(event)` and, with a shared secret, `X-Signature` = hex HMAC-SHA1 of that text.
 * Webhooks (Actions) with batching sends a JSON array and signs only `JSON.stringify(body[0])`.
 * https://segment.com/docs/connections/destinations/catalog/webhooks/#authentication
 * The relay reads no User-Agent; the test event sends the classic one.
 *
 * `curlCommand` builds the same request as a command line to paste (`npm start` prints one).
 */

export const TEST_EVENT_TYPES = ['identify', 'track', 'group', 'delete'] as const
export type TestEventType = (typeof TEST_EVENT_TYPES)[number]

export interface TestEventOptions {
  readonly type?: TestEventType
  readonly userId?: string | undefined
  /** When Segment received it; the client's timestamps are set a little earlier, as in real traffic. */
  readonly now?: Date
}

export type TestEvent = Record<string, unknown> & { readonly type: TestEventType; readonly messageId: string }

export interface Credentials {
  readonly secret?: string | undefined
  readonly token?: string | undefined
}

export const DEFAULT_USER_ID = 'relay-test-user'

/** A realistic Segment event of the given type, as analytics.js produces and Segment forwards it. */
export const buildTestEvent = (options: TestEventOptions = {}): TestEvent => {
  const type = options.type ?? 'identify'
  const received = options.now ?? new Date()
  const at = (msBefore: number) => new Date(received.getTime() - msBefore).toISOString()
  const common = {
    type,
    // Unique, as Segment and Courier dedupe on it (≤ 100 characters), and easy to find in Courier's logs.
    messageId: `relay-test-${randomUUID()}`,
    userId: options.userId ?? DEFAULT_USER_ID,
    anonymousId: randomUUID(),
    timestamp: at(250),
    sentAt: at(200),
    receivedAt: received.toISOString(),
    originalTimestamp: at(250),
    context: {
      library: { name: 'analytics.js', version: 'npm:next-1.74.0' },
      ip: '203.0.113.7',
      locale: 'en-US',
      userAgent: 'Mozilla/5.0 (X11; Linux x86_64) segment-courier-relay test event',
      page: { path: '/checkout', url: 'https://shop.example.com/checkout', title: 'Checkout' },
    },
    integrations: {},
    version: 2,
  }
  switch (type) {
    case 'identify':
      return { ...common, traits: { email: 'ada@example.com', name: 'Ada Lovelace', plan: 'pro' } }
    case 'track':
      return {
        ...common,
        event: 'Order Completed',
        properties: {
          order_id: `order-${randomUUID().slice(0, 8)}`,
          total: 42.5,
          revenue: 38.64,
          currency: 'USD',
          products: [{ product_id: 'sku-1', name: 'Analytical Engine', price: 42.5, quantity: 1 }],
        },
      }
    case 'group':
      return { ...common, groupId: 'acme', traits: { name: 'Acme Inc', plan: 'enterprise', employees: 120 } }
    case 'delete':
      // A user-deletion request: Segment sends the ids and no traits.
      return { ...common, context: { library: common.context.library } }
  }
}

/** Pure: the text Segment signs: the body, or its first element for a batch. */
export const signedText = (body: unknown): string => JSON.stringify(Array.isArray(body) ? body[0] : body)

/** Pure: the headers Segment's webhook sends with `body`. */
export const segmentHeaders = (body: unknown, credentials: Credentials = {}): Record<string, string> => {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'Segment.io/1.0',
  }
  if (credentials.secret) headers['x-signature'] = sign(credentials.secret, signedText(body))
  if (credentials.token) headers.authorization = `Bearer ${credentials.token}`
  return headers
}

export interface SendResult {
  readonly status: number
  readonly text: string
}

/** Posts `body` (an event or an array of them) as Segment does and returns the answer. */
export const sendTestEvent = async (
  url: string,
  body: unknown,
  credentials: Credentials = {},
  timeoutMs = 10_000,
): Promise<SendResult> => {
  const response = await fetch(url, {
    method: 'POST',
    headers: segmentHeaders(body, credentials),
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  })
  return { status: response.status, text: await response.text() }
}

/**
 * Pure: one word for bash, zsh and POSIX sh: inside '…' nothing is special, and a ' is written
 * as '"'"' (close, a quoted ', reopen). JSON has no raw newlines or NULs, so this is exact.
 */
export const shellQuote = (text: string): string => `'${text.replace(/'/g, `'"'"'`)}'`

/**
 * Pure: a curl command line that sends `body` exactly as sendTestEvent does (signed when a
 * secret is given), ready to paste. `--data-raw` sends the text as is (`-d` would read `@file`).
 */
export const curlCommand = (
  url: string,
  secret: string | undefined,
  body: unknown,
  token?: string | undefined,
): string => {
  const lines = [`curl -sS -X POST ${shellQuote(url)}`]
  for (const [name, value] of Object.entries(segmentHeaders(body, { secret, token }))) {
    lines.push(`  -H ${shellQuote(`${name}: ${value}`)}`)
  }
  lines.push(`  --data-raw ${shellQuote(JSON.stringify(body))}`)
  lines.push(`  -w ${shellQuote('\\nHTTP %{http_code}\\n')}`)
  return lines.join(' \\\n')
}
