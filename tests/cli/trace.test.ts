import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main as dlq } from '../../lib/cli/dlq.ts'
import { insightsQuery, logGroupsOf, sinceSeconds, main as trace } from '../../lib/cli/trace.ts'
import { sendTestEvent } from '../../lib/segment/test-event.ts'
import type { LogEntry, Timeline } from '../../lib/timeline.ts'
import { DEV_USER_KEY_SECRET, userKeyWith } from '../../lib/user-key.ts'
import { audienceIdentify, deletion, identify, track } from '../support/fixtures.ts'
import { type InsightsStub, startInsightsStub } from '../support/logs-insights-stub.ts'
import { type NpmStart, startNpmStart, until } from '../support/npm-start.ts'

/**
 * `npm run trace` against `npm start`: one person (an email as userId, a phone and an email in
 * the traits) whose events are delivered, retried, dead-lettered, rejected, an audience change and
 * a deletion whose tenant step fails once. The same log lines, put in a Logs Insights stub, give the
 * same timelines on the AWS path. And nothing the relay logged, or kept as a reason, names them.
 */

const JANE = 'jane.doe@example.com'
const JANE_PHONE = '+14155550123'
const BOB = 'bob@example.com'
const janeKey = userKeyWith(DEV_USER_KEY_SECRET)(JANE)
const who = { userId: JANE, anonymousId: 'anon-jane' }
const traits = { email: JANE, phone: JANE_PHONE, name: 'Jane Doe' }

let relay: NpmStart
let port: number
let sandbox: string
let sqsPort: number

const capture = () => {
  const out: string[] = []
  const err: string[] = []
  return { out, err, io: { out: (line: string) => out.push(line), err: (line: string) => err.push(line) } }
}

const traceLocal = async (args: string[]) => {
  const { out, err, io } = capture()
  const code = await trace(['--local', ...args], { ...io, env: { PORT: String(port) } })
  return { code, out, err }
}
const timelinesOf = async (args: string[]): Promise<Timeline[]> =>
  (await traceLocal([...args, '--json'])).out.map((line) => JSON.parse(line) as Timeline)

/** Waits until trace says the event reached `fate` (progress, not a fixed sleep). */
const fateOf = (messageId: string, fate: Timeline['fate'], last?: (t: Timeline) => boolean) =>
  until(async () => {
    const [timeline] = await timelinesOf(['--message-id', messageId])
    return timeline?.fate === fate && (last === undefined || last(timeline)) ? timeline : undefined
  }, `${messageId} ${fate}`)

const post = (body: unknown) => sendTestEvent(`http://127.0.0.1:${port}/segment`, body)
const fault = (failNext: unknown[]) =>
  fetch(`${sandbox}/_sandbox/faults`, { method: 'POST', body: JSON.stringify({ failNext }) })

const events = {
  delivered: identify({ ...who, traits }),
  retried: track({ ...who, event: 'Order Completed' }),
  deadLettered: track({ ...who, event: 'Signed Up' }),
  audience: audienceIdentify(
    { inAudience: true, userId: JANE },
    { anonymousId: 'anon-jane', traits: { ...traits, order_completed_last_30days: true } },
  ),
  deletion: deletion({ userId: JANE }),
  rejected: { type: `${JANE} ${JANE_PHONE}`, messageId: 'rejected-1', userId: JANE, traits },
  other: identify({ userId: BOB, traits: { email: BOB } }),
}

beforeAll(async () => {
  relay = startNpmStart({
    AUDIENCE_BATCHING_WINDOW_SECONDS: '0',
    RETRY_BASE_SECONDS: '1',
    RETRY_MAX_SECONDS: '1',
  })
  const urls = await relay.urls()
  port = urls.port
  sandbox = urls.sandbox as string
  sqsPort = urls.sqsPort

  // One step at a time, each waited for: a fault knob must meet the event it is meant for.
  expect((await post(events.delivered)).status).toBe(200)
  await fateOf(events.delivered.messageId, 'delivered')

  await fault([{ path: '/inbound/segment', status: 500 }])
  expect((await post(events.retried)).status).toBe(200)
  await fateOf(events.retried.messageId, 'delivered')

  await fault([{ path: '/inbound/segment', status: 400 }])
  expect((await post(events.deadLettered)).status).toBe(200)
  await fateOf(events.deadLettered.messageId, 'dead-lettered')

  expect((await post(events.audience)).status).toBe(200)
  await fateOf(events.audience.messageId, 'delivered', (t) => t.steps.some((s) => s.by === 'audiences'))

  expect((await post(events.rejected)).status).toBe(400)
  // Not JSON, quoting the person: the answer and the log must not echo it.
  const broken = await fetch(`http://127.0.0.1:${port}/segment`, {
    method: 'POST',
    body: `{"userId": ${JANE}, "phone": "${JANE_PHONE}"}`,
  })
  expect(broken.status).toBe(400)
  expect(await broken.text()).not.toContain('jane')

  await fault([{ method: 'DELETE', path: `/users/${JANE}/tenants`, status: 500 }])
  expect((await post(events.deletion)).status).toBe(200)
  await fateOf(events.deletion.messageId, 'delivered')

  expect((await post(events.other)).status).toBe(200)
  await fateOf(events.other.messageId, 'delivered')
}, 120_000)

afterAll(async () => {
  relay.child.kill('SIGINT')
  await relay.stopped()
})

describe('npm run trace -- --local', () => {
  it('--user lists every event of the person in order, with each one’s fate, and no one else’s', async () => {
    const timelines = await timelinesOf(['--user', JANE])

    expect(timelines.map((t) => t.messageId)).toEqual([
      events.delivered.messageId,
      events.retried.messageId,
      events.deadLettered.messageId,
      events.audience.messageId,
      events.rejected.messageId,
      events.deletion.messageId,
    ])
    expect(timelines.map((t) => t.fate)).toEqual([
      'delivered',
      'delivered',
      'dead-lettered',
      'delivered',
      'rejected',
      'delivered',
    ])
    expect(new Set(timelines.map((t) => t.user))).toEqual(new Set([janeKey]))
  })

  it('shows each attempt of a retried event: Courier’s status, the outcome and the delay', async () => {
    const [timeline] = await timelinesOf(['--message-id', events.retried.messageId])

    expect(timeline?.steps.map((s) => [s.by, s.outcome ?? 'received', s.status])).toEqual([
      ['ingest', 'received', undefined],
      ['deliver', 'retried', 500],
      ['deliver', 'delivered', 202],
    ])
    expect(timeline?.steps[1]?.delaySeconds).toBeGreaterThan(0)
    expect(timeline?.steps[1]?.attempt).toBe(1)
    expect(timeline?.steps[2]?.attempt).toBe(2)
  })

  it('gives a dead letter’s reason, the list sync’s writes of an audience event, and a rejection', async () => {
    const [dead] = await timelinesOf(['--message-id', events.deadLettered.messageId])
    const [audience] = await timelinesOf(['--message-id', events.audience.messageId])
    const [rejected] = await timelinesOf(['--message-id', events.rejected.messageId])

    expect(dead?.fateReason).toMatch(/400/)
    expect(audience?.steps.find((s) => s.by === 'audiences')?.what).toMatch(
      /^list sync: (PUT|POST) \/lists\/order_completed_last_30days-aud_1\/subscriptions/,
    )
    expect(rejected?.fate).toBe('rejected')
    expect(rejected?.fateReason).toMatch(/^type must be one of .*; got a string of \d+ characters$/)
  })

  it('names a failed Courier call by the person’s key', async () => {
    const [timeline] = await timelinesOf(['--message-id', events.deletion.messageId])

    expect(timeline?.steps.find((s) => s.outcome === 'retried')?.reason).toContain(
      `(DELETE /users/${janeKey}/tenants)`,
    )
  })

  it('prints a screen a person reads: one head line per event, its steps under it, a summary', async () => {
    const { code, out } = await traceLocal(['--user', JANE])

    expect(code).toBe(0)
    expect(out[0]).toBe(`${events.delivered.messageId}  identify  user ${janeKey}  → delivered`)
    expect(out[1]).toMatch(
      /^ {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} {2}ingest {4}received \(single request of 1 event\) and enqueued$/,
    )
    expect(out.at(-1)).toBe(`6 event(s) for user key ${janeKey}: 4 delivered, 1 dead-lettered, 1 rejected`)
  })
})

describe('npm run trace -- --stage (CloudWatch Logs Insights)', () => {
  let stub: InsightsStub
  let entries: LogEntry[]

  beforeAll(async () => {
    stub = await startInsightsStub()
    entries = ((await (await fetch(`http://127.0.0.1:${port}/_relay/log`)).json()) as { entries: LogEntry[] })
      .entries
    const groups = Object.fromEntries(
      ['ingest', 'deliver', 'audiences'].map((fn, i) => [fn, logGroupsOf('test')[i] as string]),
    )
    stub.put(
      entries.map((entry) => ({
        logGroup: groups[String(entry.relayFunction)] as string,
        timestamp: Date.parse(String(entry.timestamp)),
        message: JSON.stringify(entry),
      })),
    )
  })
  afterAll(() => stub.stop())

  const traceAws = async (args: string[]) => {
    const { out, err, io } = capture()
    const logs = new CloudWatchLogsClient({
      endpoint: stub.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    })
    try {
      const code = await trace(['--stage', 'test', ...args], { ...io, env: {}, logs, sleep: async () => {} })
      return { code, out, err }
    } finally {
      logs.destroy()
    }
  }

  it('queries the three functions’ log groups over --since and tells the same story as --local', async () => {
    const local = await timelinesOf(['--user', JANE])

    const { code, out, err } = await traceAws(['--user', JANE, '--since', '2h', '--json'])

    expect(code).toBe(0)
    expect(out.map((line) => JSON.parse(line))).toEqual(local)
    const start = stub.calls.find((call) => call.operation === 'StartQuery')?.body
    expect(start?.logGroupNames).toEqual([
      '/aws/lambda/segment-courier-relay-test-ingest',
      '/aws/lambda/segment-courier-relay-test-deliver',
      '/aws/lambda/segment-courier-relay-test-audiences',
    ])
    expect((start?.endTime as number) - (start?.startTime as number)).toBe(7_200)
    expect(start?.queryString).toBe(insightsQuery(janeKey))
    // Scheduled, Running, then Complete: asked until Complete.
    expect(stub.calls.filter((call) => call.operation === 'GetQueryResults')).toHaveLength(3)
    // Without USER_KEY_SECRET the key is the dev one: said, since it matches nothing deployed.
    expect(err).toEqual([expect.stringMatching(/USER_KEY_SECRET is not set/)])
  })

  it('finds one event by its messageId', async () => {
    const { out } = await traceAws(['--message-id', events.retried.messageId, '--json'])

    expect(out.map((line) => (JSON.parse(line) as Timeline).fate)).toEqual(['delivered'])
  })

  it('refuses a --since beyond 30 days, and flags that say neither who nor where', async () => {
    expect(() => sinceSeconds('31d')).toThrow(/between 1m and 30d/)
    const { code, err } = await traceAws(['--user', JANE, '--since', '400d'])
    const neither = capture()
    const none = await trace(['--local'], { ...neither.io, env: {} })

    expect(code).toBe(2)
    expect(err[0]).toMatch(/--since must be between 1m and 30d/)
    expect(none).toBe(2)
    expect(neither.err[0]).toMatch(/--user <userId> or --message-id <id>/)
  })
})

describe('logs without personal data', () => {
  it('no log line, reason or printed line of the relay holds the person’s id, email or phone', async () => {
    // Prepare: every kept log line, the terminal after the banner (the sandbox's own lines are
    // Courier's view, not the relay's), and every dead letter's reason
    const log = await (await fetch(`http://127.0.0.1:${port}/_relay/log`)).text()
    const printed = relay
      .output()
      .split('Ctrl-C stops everything')[1]
      ?.split('\n')
      .filter((line) => !line.startsWith('courier ←'))
      .join('\n')
    const letters = capture()
    await dlq(['--local', '--json'], { ...letters.io, env: { SQS_PORT: String(sqsPort) } })
    const reasons = letters.out.map((line) => JSON.parse(line) as { reason?: string; history?: unknown })

    // Assess: the scan sees what it should (the events are there, under their key)…
    expect(log).toContain(janeKey)
    expect(printed).toContain(janeKey)
    expect(reasons.length).toBeGreaterThanOrEqual(2)
    // …and none of the person's data
    for (const text of [log, printed ?? '', JSON.stringify(reasons.map((r) => [r.reason, r.history]))]) {
      for (const personal of [
        JANE,
        'jane.doe',
        'jane.doe%40example.com',
        'Jane Doe',
        JANE_PHONE,
        '4155550123',
        BOB,
        'anon-jane',
      ]) {
        expect(text).not.toContain(personal)
      }
    }
  })
})
