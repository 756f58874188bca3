import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { DEFAULTS, parseConfig, SETTING_NAMES } from '../lib/config.ts'
import { isConfigError } from '../lib/errors/config-error.ts'

const QUEUES = {
  QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/1/q',
  DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/1/dlq',
}

const failure = (env: Record<string, string>) => {
  try {
    parseConfig({ ...QUEUES, ...env })
  } catch (error) {
    if (isConfigError(error)) return { variable: error.variable, message: error.message }
    throw error
  }
  throw new Error('expected a ConfigError')
}

describe('configuration', () => {
  it('applies the documented defaults', () => {
    const config = parseConfig(QUEUES)

    expect(config.courier.baseUrl).toBe('https://api.courier.com')
    expect(config.retry).toEqual({
      baseSeconds: DEFAULTS.RETRY_BASE_SECONDS,
      maxSeconds: DEFAULTS.RETRY_MAX_SECONDS,
      rateLimitDelaySeconds: DEFAULTS.RATE_LIMIT_DELAY_SECONDS,
      retryAfterMaxSeconds: DEFAULTS.RETRY_AFTER_MAX_SECONDS,
      authErrorDelaySeconds: DEFAULTS.AUTH_ERROR_DELAY_SECONDS,
    })
    expect(config.delivery.concurrency).toBe(10)
    expect(config.courier.groupTenants).toBe(false)
    expect(config.courier.maxRps).toBeUndefined()
    expect(config.queue.batchMaxBytes).toBe(262_144)
  })

  it('picks the region endpoint, and COURIER_BASE_URL wins over the region', () => {
    expect(parseConfig({ ...QUEUES, COURIER_REGION: 'eu' }).courier.baseUrl).toBe(
      'https://api.eu.courier.com',
    )
    expect(
      parseConfig({ ...QUEUES, COURIER_REGION: 'eu', COURIER_BASE_URL: 'http://127.0.0.1:9/' }).courier
        .baseUrl,
    ).toBe('http://127.0.0.1:9')
  })

  it('reads secrets as values or as SSM parameter names, never both', () => {
    const config = parseConfig({
      ...QUEUES,
      COURIER_AUTH_TOKEN: 'pk_1',
      SEGMENT_SHARED_SECRET_PARAMETER: '/r/s',
    })

    expect(config.courier.authToken).toEqual({ value: 'pk_1' })
    expect(config.ingest.sharedSecret).toEqual({ parameter: '/r/s' })
    expect(failure({ INGEST_TOKEN: 'a', INGEST_TOKEN_PARAMETER: '/b' }).variable).toBe('INGEST_TOKEN')
  })

  it.each([
    [{ COURIER_REGION: 'ap' }, 'COURIER_REGION', /"us" or "eu"/],
    [{ RETRY_BASE_SECONDS: 'ten' }, 'RETRY_BASE_SECONDS', /whole number from 1 to 43200/],
    [
      { RETRY_BASE_SECONDS: '100', RETRY_MAX_SECONDS: '50' },
      'RETRY_MAX_SECONDS',
      /at least RETRY_BASE_SECONDS/,
    ],
    [{ DELIVERY_CONCURRENCY: '0' }, 'DELIVERY_CONCURRENCY', /from 1 to 100/],
    [{ COURIER_GROUP_TENANTS: 'maybe' }, 'COURIER_GROUP_TENANTS', /true or false/],
    [{ COURIER_MAX_RPS: '-3' }, 'COURIER_MAX_RPS', /positive number/],
    [{ COURIER_BASE_URL: 'ftp://x' }, 'COURIER_BASE_URL', /http\(s\) URL/],
    [{ SQS_BATCH_MAX_BYTES: '2000000' }, 'SQS_BATCH_MAX_BYTES', /1024 to 1048576/],
    [{ QUEUE_URL: '' }, 'QUEUE_URL', /is required/],
  ])('refuses %j naming the variable and what is allowed', (env, variable, message) => {
    const error = failure(env as Record<string, string>)
    expect(error.variable).toBe(variable)
    expect(error.message).toMatch(message)
    expect(error.message.startsWith(`${variable}: `)).toBe(true)
  })

  it('documents every setting in the README', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    const missing = SETTING_NAMES.filter((name) => !readme.includes(`\`${name}\``))
    expect(missing).toEqual([])
  })
})
