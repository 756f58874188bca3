import { execFile, spawn } from 'node:child_process'
import { connect } from 'node:net'
import { networkInterfaces } from 'node:os'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sign } from '../../lib/segment/signature.ts'
import { buildTestEvent, sendTestEvent } from '../../lib/segment/test-event.ts'

/**
 * `npm start` as a new user runs it: the real entry point in its own process, on free ports,
 * with a shared secret. A signed event posted to the printed URL reaches the Courier sandbox.
 */

/** `npm start` in a child process (every port picked free, the sandbox as Courier), its output gathered. */
const startLocalRelay = (env: Record<string, string>) => {
  let output = ''
  const child = spawn(process.execPath, ['lib/local/start.ts'], {
    cwd: new URL('../..', import.meta.url),
    env: {
      ...process.env,
      PORT: '0',
      SQS_PORT: '0',
      COURIER_SANDBOX_PORT: '0',
      COURIER_AUTH_TOKEN: '',
      COURIER_BASE_URL: '',
      ...env,
    },
  })
  child.stdout?.on('data', (chunk) => {
    output += chunk
  })
  child.stderr?.on('data', (chunk) => {
    output += chunk
  })
  return {
    child,
    output: () => output,
    waitFor: async (pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> => {
      const started = Date.now()
      for (;;) {
        const match = output.match(pattern)
        if (match) return match
        if (Date.now() - started > timeoutMs)
          throw new Error(`npm start did not print ${pattern}:\n${output}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    },
    stopped: () =>
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise((resolve) => child.once('exit', resolve)),
  }
}

let relay: ReturnType<typeof startLocalRelay>
const waitFor = (pattern: RegExp, timeoutMs?: number) => relay.waitFor(pattern, timeoutMs)

beforeAll(() => {
  relay = startLocalRelay({
    // The audience list sync invokes as soon as it has records, not after its 20 s window.
    AUDIENCE_BATCHING_WINDOW_SECONDS: '0',
    SEGMENT_SHARED_SECRET: 'start-test-secret',
  })
})

afterAll(async () => {
  relay.child.kill('SIGINT')
  await relay.stopped()
})

it('prints the webhook URL and a signed curl, and delivers a posted event to the sandbox', async () => {
  // Prepare
  const [, webhook] = await waitFor(/Segment webhook\s+POST (\S+)/)
  const [, sandbox] = await waitFor(/Sandbox controls\s+(\S+)\/_sandbox\/received/)
  expect(relay.output()).toMatch(/curl -sS -X POST '.*\/segment'[\s\S]*x-signature: [0-9a-f]{40}/)
  expect(relay.output()).toMatch(/Batching\s+needs INGEST_TOKEN/)
  const event = buildTestEvent({ type: 'track' })

  // Act
  const answer = await sendTestEvent(webhook as string, event, { secret: 'start-test-secret' })

  // Assess
  expect(answer).toEqual({ status: 200, text: '{"accepted":1,"rejected":[]}' })
  await waitFor(
    new RegExp(`courier ← 202 POST /inbound/segment track "Order Completed" .*msg=${event.messageId}`),
  )
  const received = (await (await fetch(`${sandbox}/_sandbox/received`)).json()) as { messageId: string }[]
  expect(received.map((r) => r.messageId)).toContain(event.messageId)
})

it('refuses a batch signed over its first event only, with the shared secret alone, naming the token', async () => {
  // Prepare: a genuine first event, then one whose signature nobody computed
  const [, webhook] = await waitFor(/Segment webhook\s+POST (\S+)/)
  const first = JSON.stringify(buildTestEvent({ type: 'track' }))
  const second = JSON.stringify(buildTestEvent({ type: 'identify' }))

  // Act
  const response = await fetch(webhook as string, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-signature': sign('start-test-secret', first) },
    body: `[${first},${second}]`,
  })

  // Assess
  expect(response.status).toBe(401)
  expect(((await response.json()) as { error: string }).error).toMatch(/INGEST_TOKEN/)
})

it('puts an Engage audience member on the Courier list through the local audience queue and list sync', async () => {
  // Prepare: what Engage sends when a user enters an audience
  const [, webhook] = await waitFor(/Segment webhook\s+POST (\S+)/)
  const [, sandbox] = await waitFor(/Sandbox controls\s+(\S+)\/_sandbox\/received/)
  const event = {
    ...buildTestEvent({ type: 'identify' }),
    userId: 'start-audience-member',
    traits: { start_test_audience: true },
    context: {
      personas: {
        computation_class: 'audience',
        computation_key: 'start_test_audience',
        computation_id: 'aud_s',
      },
    },
  }

  // Act
  const answer = await sendTestEvent(webhook as string, event, { secret: 'start-test-secret' })

  // Assess: the list Courier's own destination would use holds the member
  expect(answer.status).toBe(200)
  const members = async () => {
    const state = (await (await fetch(`${sandbox}/_sandbox/state`)).json()) as {
      lists: Record<string, { subscriptions: { recipientId: string }[] }>
    }
    return state.lists['start_test_audience-aud_s']?.subscriptions.map((s) => s.recipientId) ?? []
  }
  const started = Date.now()
  while (!(await members()).includes('start-audience-member') && Date.now() - started < 20_000) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  expect(await members()).toEqual(['start-audience-member'])
})

it('npm run send-test-event with no --url reaches it on PORT, signed with SEGMENT_SHARED_SECRET', async () => {
  // Prepare
  const [, webhook] = await waitFor(/Segment webhook\s+POST (\S+)/)
  const [, sandbox] = await waitFor(/Sandbox controls\s+(\S+)\/_sandbox\/received/)

  // Act: as a person would, in another terminal with the same environment
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['lib/cli/send-test-event.ts', '--type', 'group'],
    {
      cwd: new URL('../..', import.meta.url),
      env: {
        ...process.env,
        PORT: new URL(webhook as string).port,
        SEGMENT_SHARED_SECRET: 'start-test-secret',
      },
    },
  )

  // Assess
  expect(stdout).toBe('HTTP 200\n{"accepted":1,"rejected":[]}\n')
  await waitFor(/courier ← 202 POST \/inbound\/segment group /)
  const received = (await (await fetch(`${sandbox}/_sandbox/received`)).json()) as { type?: string }[]
  expect(received.some((request) => request.type === 'group')).toBe(true)
})

it('refuses an unsigned request with 401', async () => {
  const [, webhook] = await waitFor(/Segment webhook\s+POST (\S+)/)
  const answer = await sendTestEvent(webhook as string, buildTestEvent(), {})
  expect(answer.status).toBe(401)
})

/** Whether a TCP connection to host:port is accepted. */
const accepts = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(port, host)
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })

/** This machine's addresses other than loopback: where the network would reach a listener. */
const outward = Object.values(networkInterfaces())
  .flat()
  .filter((address) => address !== undefined && !address.internal && address.family === 'IPv4')
  .map((address) => address?.address as string)

it.skipIf(outward.length === 0)(
  'listens on loopback only: the webhook, the sandbox, the embedded SQS and DynamoDB refuse the network',
  async () => {
    // Prepare
    await waitFor(/Ctrl-C stops everything/)
    const ports = [...relay.output().matchAll(/http:\/\/127\.0\.0\.1:(\d+)/g)].map((match) =>
      Number(match[1]),
    )
    const listeners = [...new Set(ports)]

    // Act
    const onLoopback = await Promise.all(listeners.map((port) => accepts('127.0.0.1', port)))
    const onNetwork = await Promise.all(
      listeners.flatMap((port) => outward.map((host) => accepts(host, port))),
    )

    // Assess
    expect(listeners).toHaveLength(4)
    expect(onLoopback).toEqual([true, true, true, true])
    expect(onNetwork.every((accepted) => !accepted)).toBe(true)
  },
)

// Last: it stops the relay.
it('says on Ctrl-C how many events the in-memory queues drop', async () => {
  // Prepare: Courier down, so a posted event is still queued (waiting for its retry)
  const [, webhook] = await waitFor(/Segment webhook\s+POST (\S+)/)
  const [, sandbox] = await waitFor(/Sandbox controls\s+(\S+)\/_sandbox\/received/)
  await fetch(`${sandbox}/_sandbox/faults`, { method: 'POST', body: JSON.stringify({ outage: true }) })
  const event = buildTestEvent({ type: 'track' })
  expect((await sendTestEvent(webhook as string, event, { secret: 'start-test-secret' })).status).toBe(200)
  await waitFor(new RegExp(`courier ← 503 POST /inbound/segment .*msg=${event.messageId}`))

  // Act
  relay.child.kill('SIGINT')
  await relay.stopped()

  // Assess
  expect(relay.child.exitCode).toBe(0)
  expect(relay.output()).toMatch(
    /dropped: 1 queued event\(s\) \(0 of them cut off mid-delivery[^)]*\), 0 in the DLQ/,
  )
})

describe('npm start with Courier down and a short MAX_EVENT_AGE_SECONDS', () => {
  let expiring: ReturnType<typeof startLocalRelay>
  const waitForLog = (pattern: RegExp) => expiring.waitFor(pattern)

  beforeAll(() => {
    expiring = startLocalRelay({
      SEGMENT_SHARED_SECRET: 'expiry-test-secret',
      MAX_EVENT_AGE_SECONDS: '2',
      RETRY_BASE_SECONDS: '1',
      RETRY_MAX_SECONDS: '1',
    })
  })

  afterAll(async () => {
    expiring.child.kill('SIGINT')
    await expiring.stopped()
  })

  it('dead-letters the event once it is too old, and npm run dlq -- --local shows it with the reason', async () => {
    // Prepare: Courier down
    const [, webhook] = await waitForLog(/Segment webhook\s+POST (\S+)/)
    const [, sandbox] = await waitForLog(/Sandbox controls\s+(\S+)\/_sandbox\/received/)
    const [, sqsPort] = await waitForLog(/Embedded SQS\s+http:\/\/127\.0\.0\.1:(\d+)/)
    await fetch(`${sandbox}/_sandbox/faults`, { method: 'POST', body: JSON.stringify({ outage: true }) })
    const event = buildTestEvent({ type: 'track' })

    // Act: accepted, retried while Courier is down, then given up on after 2 s
    const answer = await sendTestEvent(webhook as string, event, { secret: 'expiry-test-secret' })
    let listed = ''
    const started = Date.now()
    while (!listed.includes(event.messageId) && Date.now() - started < 20_000) {
      await new Promise((resolve) => setTimeout(resolve, 500))
      const { stdout } = await promisify(execFile)(process.execPath, ['lib/cli/dlq.ts', '--local'], {
        cwd: new URL('../..', import.meta.url),
        env: { ...process.env, SQS_PORT: sqsPort as string },
      })
      listed = stdout
    }

    // Assess
    expect(answer.status).toBe(200)
    const line = listed.split('\n').find((l) => l.includes(event.messageId))
    expect(line).toMatch(
      /deliver\s+503\s+track\s+u_[0-9a-f]{16}\s+\S+\s+expired after \d+ s of retries \(MAX_EVENT_AGE_SECONDS 2\); last: /,
    )
  }, 40_000)
})
