import { execFile } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { createServer, type Server } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cliTarget } from '../../lib/cli/target.ts'
import { configMistakes } from '../../lib/errors/config-error.ts'
import { ensureFree, validateStart } from '../../lib/local/start-settings.ts'

/**
 * Every start-up mistake a person can make, as they make it. What `npm start` (and the CLIs that
 * read the same settings) check runs here in process: each mistake is one line naming the
 * variable, the value and what is allowed. Two runs in a child process show what only a process
 * shows: exit status 2, those lines alone on stderr, no stack trace, nothing on stdout.
 */

const ROOT = new URL('../..', import.meta.url)

/** The test's environment minus anything that would choose a Courier, every port picked free. */
const baseEnv = (env: Record<string, string>) => ({
  ...process.env,
  PORT: '0',
  SQS_PORT: '0',
  COURIER_SANDBOX_PORT: '0',
  COURIER_AUTH_TOKEN: '',
  COURIER_AUTH_TOKEN_PARAMETER: '',
  COURIER_BASE_URL: '',
  ...env,
})

/** The lines `run` fails with: one per mistake. */
const mistakeLines = async (run: () => unknown): Promise<string[]> => {
  try {
    await run()
  } catch (error) {
    const mistakes = configMistakes(error)
    if (mistakes === undefined) throw error
    return mistakes.map((mistake) => mistake.message)
  }
  throw new Error('expected a setting mistake')
}

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `script` in a child process with baseEnv(env). */
const run = (script: string, env: Record<string, string>, args: string[] = []): Promise<Run> =>
  new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { cwd: ROOT, env: baseEnv(env) }, (error, stdout, stderr) =>
      resolve({ code: error ? (error.code as number | null) : 0, stdout, stderr }),
    )
  })

describe('npm start refuses a wrong setting with one line naming it', () => {
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
    const lines = await mistakeLines(() => validateStart(baseEnv(env)))

    expect(lines).toEqual([expect.stringMatching(line)])
  })

  it('names every wrong setting at once, one line each, in one pass', async () => {
    const lines = await mistakeLines(() =>
      validateStart(
        baseEnv({
          RETRY_BASE_SECONDS: 'abc',
          COURIER_REGION: 'mars',
          DELIVER_BATCH_SIZE: '0',
          COURIER_BASE_URL: 'http://127.0.0.1:9',
        }),
      ),
    )

    expect(lines.sort()).toEqual([
      expect.stringMatching(
        /^COURIER_AUTH_TOKEN: is required with COURIER_BASE_URL=http:\/\/127\.0\.0\.1:9 /,
      ),
      'COURIER_REGION: must be "us" or "eu", got "mars"',
      'DELIVER_BATCH_SIZE: must be a whole number from 1 to 10, got "0"',
      expect.stringMatching(/^RETRY_BASE_SECONDS: must be a whole number from 1 to \d+, got "abc"$/),
    ])
  })

  it('starts with the settings right: the sandbox as Courier, the defaults filled in', () => {
    const { local, courier, config } = validateStart(baseEnv({}))

    expect(courier).toEqual({ kind: 'sandbox' })
    expect(local.deliverTimeoutSeconds).toBe(60)
    expect(config.queue.fifo).toBe(true)
  })
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
      const lines = await mistakeLines(() => ensureFree([[variable, port]]))

      expect(lines).toEqual([
        expect.stringMatching(
          new RegExp(
            `^${variable}: port ${port} on 127\\.0\\.0\\.1 is already in use by another program; set ${variable} to a free port`,
          ),
        ),
      ])
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
  const [web, sqs, sandbox] = servers.map((server) => (server.address() as AddressInfo).port) as number[]

  // Act
  const lines = await mistakeLines(() =>
    ensureFree([
      ['PORT', web as number],
      ['SQS_PORT', sqs as number],
      ['COURIER_SANDBOX_PORT', sandbox as number],
    ]),
  )
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))

  // Assess
  expect(lines).toEqual([
    expect.stringMatching(
      new RegExp(
        `^PORT, SQS_PORT, COURIER_SANDBOX_PORT: ports ${web}, ${sqs}, ${sandbox} on 127\\.0\\.0\\.1 are already in use .* e\\.g\\. PORT=${(web as number) + 10} SQS_PORT=${(sqs as number) + 10} COURIER_SANDBOX_PORT=${(sandbox as number) + 10} npm start$`,
      ),
    ),
  ])
})

describe('the CLIs read the same settings the same way', () => {
  it.each([
    [{ local: true }, { SQS_PORT: '45x' }, /^SQS_PORT: must be a port number .*got "45x"$/],
    [{ local: true }, { SQS_PORT: '99999' }, /^SQS_PORT: must be a port number .*got "99999"$/],
    [{}, { DLQ_URL: 'dlq' }, /^DLQ_URL: must be a queue URL such as https:\/\/sqs\..*, got "dlq"$/],
    [
      {},
      { DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/1/dlq', QUEUE_URL: 'events' },
      /^QUEUE_URL: must be a queue URL .*got "events"$/,
    ],
    [
      {},
      { DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/1/dlq', AWS_ENDPOINT_URL_SQS: 'localhost:3002' },
      /^AWS_ENDPOINT_URL_SQS: must be the http\(s\) URL of an SQS endpoint, got "localhost:3002"$/,
    ],
  ])('npm run dlq/redrive %j with %j', async (flags, env, line) => {
    const lines = await mistakeLines(() => cliTarget(flags, baseEnv(env)))

    expect(lines).toEqual([expect.stringMatching(line)])
  })
})

describe('as a process', () => {
  it('npm start names every wrong setting at once, one line each, and exits with status 2', async () => {
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
      expect.stringMatching(
        /^COURIER_AUTH_TOKEN: is required with COURIER_BASE_URL=http:\/\/127\.0\.0\.1:9 /,
      ),
      'COURIER_REGION: must be "us" or "eu", got "mars"',
      'DELIVER_BATCH_SIZE: must be a whole number from 1 to 10, got "0"',
      expect.stringMatching(/^RETRY_BASE_SECONDS: must be a whole number from 1 to \d+, got "abc"$/),
    ])
  })

  it('npm run send-test-event with a malformed PORT prints one line and exits with status 2', async () => {
    const result = await run('lib/cli/send-test-event.ts', { PORT: 'http' })

    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^PORT: must be a port number .*got "http"$/),
    ])
  })
})
