import {
  buildTestEvent,
  DEFAULT_USER_ID,
  type SendResult,
  sendTestEvent,
  TEST_EVENT_TYPES,
  type TestEventType,
} from '../segment/test-event.ts'
import { parseFlags, runCli } from './args.ts'
import type { CliIo } from './dlq.ts'

export const USAGE = `usage: npm run send-test-event -- --url <webhook url> [--secret <s>] [--token <t>]
                                 [--type identify|track|group|delete] [--user-id <id>] [--batch N]

Posts a Segment-shaped event the way Segment's webhook does and prints the answer.
  --url <url>      the webhook: http://localhost:3000/segment (npm start) or the WebhookUrl output
  --secret <s>     Segment's shared secret: adds X-Signature
  --token <t>      the ingest token: adds Authorization: Bearer <t>
  --type <type>    identify (default), track (Order Completed), group or delete
  --user-id <id>   the userId (default ${DEFAULT_USER_ID})
  --batch N        send a JSON array of N events, signed over the first (Webhooks (Actions) batching)`

const isTestEventType = (value: string): value is TestEventType =>
  (TEST_EVENT_TYPES as readonly string[]).includes(value)

export const main = async (argv: string[], io: CliIo = {}): Promise<number> => {
  const { out = console.log, err = console.error } = io
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
    err(`${problem}\n${USAGE}`)
    return 2
  }
  const type = values.type ?? 'identify'
  if (!values.url) return usage('--url is required')
  if (!/^https?:$/.test(URL.parse(values.url)?.protocol ?? '')) {
    return usage(`--url must be an http(s) URL such as http://localhost:3000/segment, got "${values.url}"`)
  }
  if (!isTestEventType(type))
    return usage(`--type must be one of ${TEST_EVENT_TYPES.join(', ')}, got "${type}"`)
  if (values.batch !== undefined && !(/^\d+$/.test(values.batch) && Number(values.batch) >= 1)) {
    return usage(`--batch must be a whole number ≥ 1, got "${values.batch}"`)
  }
  const make = () => buildTestEvent({ type, userId: values['user-id'] })
  const body = values.batch === undefined ? make() : Array.from({ length: Number(values.batch) }, make)
  let answer: SendResult
  try {
    answer = await sendTestEvent(values.url, body, { secret: values.secret, token: values.token })
  } catch (error) {
    // fetch says only "fetch failed"; the reason (ECONNREFUSED, a DNS failure, the timeout) is its cause.
    const cause = (error as { cause?: { code?: string; message?: string } }).cause
    err(`could not post to ${values.url}: ${cause?.code ?? cause?.message ?? (error as Error).message}`)
    return 1
  }
  out(`HTTP ${answer.status}`)
  if (answer.text) out(answer.text)
  return answer.status >= 200 && answer.status < 300 ? 0 : 1
}

if (import.meta.main) await runCli(main)
