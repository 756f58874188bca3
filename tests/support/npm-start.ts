import { spawn } from 'node:child_process'

/**
 * `npm start` in a child process, as a person runs it: every port picked free, the sandbox as
 * Courier unless the test names one, its whole output gathered. Waits are bounded by what the
 * relay prints (progress), with a generous ceiling only to end a test that hangs.
 */
export interface NpmStart {
  readonly child: ReturnType<typeof spawn>
  readonly output: () => string
  readonly waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>
  readonly stopped: () => Promise<void>
  /** Where it listens, once the banner is out. */
  readonly urls: () => Promise<{
    webhook: string
    port: number
    sandbox: string | undefined
    sqsPort: number
  }>
}

export const startNpmStart = (env: Record<string, string>): NpmStart => {
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
      // Logs on, as a person sees them (the test runner silences them by default).
      POWERTOOLS_LOG_LEVEL: 'INFO',
      // As `npm start` runs by default: the metrics feed the status page's rates.
      POWERTOOLS_METRICS_DISABLED: 'false',
      ...env,
    },
  })
  child.stdout?.on('data', (chunk) => {
    output += chunk
  })
  child.stderr?.on('data', (chunk) => {
    output += chunk
  })
  const waitFor = async (pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> => {
    const started = Date.now()
    for (;;) {
      const match = output.match(pattern)
      if (match) return match
      if (child.exitCode !== null) throw new Error(`npm start exited before printing ${pattern}:\n${output}`)
      if (Date.now() - started > timeoutMs) throw new Error(`npm start did not print ${pattern}:\n${output}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  return {
    child,
    output: () => output,
    waitFor,
    stopped: () =>
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise((resolve) => child.once('exit', () => resolve())),
    urls: async () => {
      const [, webhook] = await waitFor(/Segment webhook\s+POST (\S+)/)
      const [, sqsPort] = await waitFor(/Embedded SQS\s+http:\/\/127\.0\.0\.1:(\d+)/)
      const sandbox = output.match(/Sandbox controls\s+(\S+)\/_sandbox\/received/)?.[1]
      return {
        webhook: webhook as string,
        port: Number(new URL(webhook as string).port),
        sandbox,
        sqsPort: Number(sqsPort),
      }
    },
  }
}

/** Waits until `check` holds, polling; the ceiling only ends a test that hangs. */
export const until = async <T>(
  check: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 30_000,
): Promise<T> => {
  const started = Date.now()
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
