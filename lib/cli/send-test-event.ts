import { localPort } from '../config.ts'
import { WEBHOOK_PATH } from '../local/server.ts'
import {
  buildTestEvent,
  DEFAULT_USER_ID,
  type SendResult,
  sendTestEvent,
  TEST_EVENT_TYPES,
  type TestEventType,
} from '../segment/test-event.ts'
import { parseFlags, runCli, usageProblem } from './args.ts'
import type { CliIo } from './dlq.ts'

export const USAGE = `usage: npm run send-test-event -- [--url <webhook url>] [--secret <s>] [--token <t>]
                                 [--type identify|track|group|delete] [--user-id <id>] [--batch N]

Posts a Segment-shaped event the way Segment's webhook does and prints the answer.
  --url <url>      the webhook: the WebhookUrl output of a deploy; by default the relay
                   \`npm start\` runs on this machine, http://127.0.0.1:$PORT/segment
  --secret <s>     Segment's shared secret: adds X-Signature (default: $SEGMENT_SHARED_SECRET)
  --token <t>      the ingest token: adds Authorization: Bearer <t> (default: $INGEST_TOKEN)
  --type <type>    identify (default), track (Order Completed), group or delete
  --user-id <id>   the userId (default ${DEFAULT_USER_ID})
  --batch N        send a JSON array of N events, signed over the first (Webhooks (Actions) batching)`

const isTestEventType = (value: string): value is TestEventType =>
  (TEST_EVENT_TYPES as readonly string[]).includes(value)

/** Pure: the webhook of `npm start` on this machine, on PORT as `npm start` reads it. */
export const localWebhookUrl = (env: Readonly<Record<string, string | undefined>>): string =>
  `http://127.0.0.1:${localPort(env, 'PORT')}${WEBHOOK_PATH}`

const isLoopback = (url: string): boolean =>
  ['127.0.0.1', 'localhost', '[::1]'].includes(URL.parse(url)?.hostname ?? '')

/**
 * Pure: what to do about a 401, naming the variables and flags: the relay refuses a request whose
 * credentials do not match the ones it was started with, and says no more (it must not help a guesser).
 */
export const credentialsHint = (secret: string | undefined, token: string | undefined): string => {
  const sent = [secret && 'an X-Signature made with the shared secret', token && 'a bearer token']
    .filter(Boolean)
    .join(' and ')
  return `the relay refused the credentials (sent: ${sent || 'none'}): set SEGMENT_SHARED_SECRET (or --secret) and/or INGEST_TOKEN (or --token) to the values the relay runs with`
}

export const main = async (argv: string[], io: CliIo = {}): Promise<number> => {
  const { env = process.env, out = console.log, err = console.error } = io
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
  const usage = (problem: string) => {
    err(usageProblem(problem, USAGE))
    return 2
  }
  const type = values.type ?? 'identify'
  const url = values.url ?? localWebhookUrl(env)
  if (!/^https?:$/.test(URL.parse(url)?.protocol ?? '')) {
    return usage(`--url must be an http(s) URL such as http://127.0.0.1:3000/segment, got "${url}"`)
  }
  if (!isTestEventType(type))
    return usage(`--type must be one of ${TEST_EVENT_TYPES.join(', ')}, got "${type}"`)
  if (values.batch !== undefined && !(/^\d+$/.test(values.batch) && Number(values.batch) >= 1)) {
    return usage(`--batch must be a whole number ≥ 1, got "${values.batch}"`)
  }
  const make = () => buildTestEvent({ type, userId: values['user-id'] })
  const body = values.batch === undefined ? make() : Array.from({ length: Number(values.batch) }, make)
  // Empty flags or variables mean "none", as in `npm start`.
  const secret = values.secret ?? (env.SEGMENT_SHARED_SECRET?.trim() || undefined)
  const token = values.token ?? (env.INGEST_TOKEN?.trim() || undefined)
  let answer: SendResult
  try {
    answer = await sendTestEvent(url, body, { secret, token })
  } catch (error) {
    // fetch says only "fetch failed"; the reason (ECONNREFUSED, a DNS failure, the timeout) is its cause.
    const cause = (error as { cause?: { code?: string; message?: string } }).cause
    const reason = cause?.code ?? cause?.message ?? (error as Error).message
    const hint =
      reason === 'ECONNREFUSED' && isLoopback(url)
        ? ` (is \`npm start\` running${values.url ? '' : ` on PORT=${localPort(env, 'PORT')}`}?)`
        : ''
    err(`could not post to ${url}: ${reason}${hint}`)
    return 1
  }
  out(`HTTP ${answer.status}`)
  if (answer.text) out(answer.text)
  if (answer.status === 401) err(credentialsHint(secret, token))
  return answer.status >= 200 && answer.status < 300 ? 0 : 1
}

if (import.meta.main) await runCli(main)
