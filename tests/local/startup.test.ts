import { execFile } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { createServer, type Server } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

/**
 * Every start-up mistake a person can make, as they make it: `npm start` (and the CLIs that read
 * the same settings) in a child process with one setting wrong. Each ends with exit status 2 and
 * one line on stderr naming the variable, the value and what is allowed; never a stack trace, and
 * nothing left listening.
 */

const ROOT = new URL('../..', import.meta.url)

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `script` with the test's environment minus anything that would choose a Courier, plus `env`. */
const run = (script: string, env: Record<string, string>, args: string[] = []): Promise<Run> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      [script, ...args],
      {
        cwd: ROOT,
        timeout: 20_000,
        env: {
          ...process.env,
          PORT: '0',
          SQS_PORT: '0',
          COURIER_SANDBOX_PORT: '0',
          COURIER_AUTH_TOKEN: '',
          COURIER_AUTH_TOKEN_PARAMETER: '',
          COURIER_BASE_URL: '',
          ...env,
        },
      },
      (error, stdout, stderr) => resolve({ code: error ? (error.code as number | null) : 0, stdout, stderr }),
    )
  })

const expectOneLine = (result: Run, line: RegExp) => {
  expect(result.code).toBe(2)
  expect(result.stdout).toBe('')
  const lines = result.stderr.trim().split('\n')
  expect(lines).toHaveLength(1)
  expect(lines[0]).toMatch(line)
  expect(result.stderr).not.toMatch(/^\s+at /m)
}

describe.concurrent('npm start refuses a wrong setting with one line and exit status 2', () => {
  it.each([
    [
      { RETRY_BASE_SECONDS: 'abc' },
      /^RETRY_BASE_SECONDS: must be a whole number from 1 to 35000, got "abc"$/,
    ],
    [{ COURIER_REGION: 'mars' }, /^COURIER_REGION: must be "us" or "eu", got "mars"$/],
    [{ DELIVER_BATCH_SIZE: '0' }, /^DELIVER_BATCH_SIZE: must be a whole number from 1 to 10, got "0"$/],
    [{ DELIVER_TIMEOUT_SECONDS: '1000' }, /^DELIVER_TIMEOUT_SECONDS: must be .*from 30 to 900, got "1000"$/],
    [
      { DELIVER_TIMEOUT_SECONDS: '60', VISIBILITY_TIMEOUT_SECONDS: '60' },
      /^VISIBILITY_TIMEOUT_SECONDS: must be .*from 360 \(6 × DELIVER_TIMEOUT_SECONDS=60.* got "60"$/,
    ],
    [{ PORT: '70000' }, /^PORT: must be a port number from 0 to 65535 .*got "70000"$/],
    [{ SQS_PORT: 'abc' }, /^SQS_PORT: must be a port number .*got "abc"$/],
    [
      { COURIER_BASE_URL: 'not a url' },
      /^COURIER_BASE_URL: must be an absolute http\(s\) URL, got "not a url"$/,
    ],
    [
      { COURIER_BASE_URL: 'http://127.0.0.1:9' },
      /^COURIER_AUTH_TOKEN: is required with COURIER_BASE_URL=http:\/\/127\.0\.0\.1:9 .*unset COURIER_BASE_URL to use the local Courier sandbox$/,
    ],
    [
      { SEGMENT_SHARED_SECRET: 'a', SEGMENT_SHARED_SECRET_PARAMETER: '/b' },
      /^SEGMENT_SHARED_SECRET: set either SEGMENT_SHARED_SECRET or SEGMENT_SHARED_SECRET_PARAMETER, not both$/,
    ],
  ])('%j', async (env, line) => {
    expectOneLine(await run('lib/local/start.ts', env), line)
  })
})

it('names every wrong setting at once, one line each', async () => {
  const result = await run('lib/local/start.ts', {
    RETRY_BASE_SECONDS: 'abc',
    COURIER_REGION: 'mars',
    DELIVER_BATCH_SIZE: '0',
    COURIER_BASE_URL: 'http://127.0.0.1:9',
  })

  expect(result.code).toBe(2)
  expect(result.stdout).toBe('')
  expect(result.stderr).not.toMatch(/^\s+at /m)
  expect(result.stderr.trim().split('\n').sort()).toEqual([
    expect.stringMatching(/^COURIER_AUTH_TOKEN: is required with COURIER_BASE_URL=http:\/\/127\.0\.0\.1:9 /),
    'COURIER_REGION: must be "us" or "eu", got "mars"',
    'DELIVER_BATCH_SIZE: must be a whole number from 1 to 10, got "0"',
    expect.stringMatching(/^RETRY_BASE_SECONDS: must be a whole number from 1 to \d+, got "abc"$/),
  ])
})

describe('a port already taken', () => {
  // Another program on the wildcard address, as LocalStack's container publishes 4566.
  let taken: Server
  let port: number
  beforeAll(async () => {
    taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '0.0.0.0', resolve))
    port = (taken.address() as AddressInfo).port
  })
  afterAll(() => new Promise<void>((resolve) => taken.close(() => resolve())))

  it.each(['PORT', 'SQS_PORT', 'COURIER_SANDBOX_PORT'])(
    'names %s as the variable to change',
    async (variable) => {
      const result = await run('lib/local/start.ts', { [variable]: String(port) })

      expectOneLine(
        result,
        new RegExp(
          `^${variable}: port ${port} on 127\\.0\\.0\\.1 is already in use by another program; set ${variable} to a free port`,
        ),
      )
    },
  )
})

it('names every port another npm start holds, in one line', async () => {
  // Prepare: three ports taken, as a relay already running takes them
  const servers = await Promise.all(
    [0, 1, 2].map(async () => {
      const server = createServer()
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      return server
    }),
  )
  const [web, sqs, sandbox] = servers.map((server) => (server.address() as AddressInfo).port)

  // Act
  const result = await run('lib/local/start.ts', {
    PORT: String(web),
    SQS_PORT: String(sqs),
    COURIER_SANDBOX_PORT: String(sandbox),
  })
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))

  // Assess
  expectOneLine(
    result,
    new RegExp(
      `^PORT, SQS_PORT, COURIER_SANDBOX_PORT: ports ${web}, ${sqs}, ${sandbox} on 127\\.0\\.0\\.1 are already in use .* e\\.g\\. PORT=${(web as number) + 10} SQS_PORT=${(sqs as number) + 10} COURIER_SANDBOX_PORT=${(sandbox as number) + 10} npm start$`,
    ),
  )
})

describe('the CLIs read the same settings the same way', () => {
  it('npm run dlq -- --local with a malformed SQS_PORT', async () => {
    expectOneLine(
      await run('lib/cli/dlq.ts', { SQS_PORT: '45x' }, ['--local']),
      /^SQS_PORT: must be a port number .*got "45x"$/,
    )
  })

  it('npm run redrive -- --local with a malformed SQS_PORT', async () => {
    expectOneLine(
      await run('lib/cli/redrive.ts', { SQS_PORT: '99999' }, ['--local']),
      /^SQS_PORT: must be a port number .*got "99999"$/,
    )
  })

  it.each([
    [
      'lib/cli/dlq.ts',
      { DLQ_URL: 'dlq' },
      /^DLQ_URL: must be a queue URL such as https:\/\/sqs\..*, got "dlq"$/,
    ],
    [
      'lib/cli/redrive.ts',
      { DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/1/dlq', QUEUE_URL: 'events' },
      /^QUEUE_URL: must be a queue URL .*got "events"$/,
    ],
    [
      'lib/cli/dlq.ts',
      { DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/1/dlq', AWS_ENDPOINT_URL_SQS: 'localhost:3002' },
      /^AWS_ENDPOINT_URL_SQS: must be the http\(s\) URL of an SQS endpoint, got "localhost:3002"$/,
    ],
  ])('%s with %j', async (script, env, line) => {
    expectOneLine(await run(script, env), line)
  })

  it('npm run send-test-event with a malformed PORT', async () => {
    expectOneLine(
      await run('lib/cli/send-test-event.ts', { PORT: 'http' }),
      /^PORT: must be a port number .*got "http"$/,
    )
  })
})
