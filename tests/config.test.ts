import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  courierAuthToken,
  DEFAULTS,
  LOCAL_DEFAULTS,
  LOCAL_SETTING_NAMES,
  parseConfig,
  parseLocalConfig,
  SETTING_NAMES,
} from '../lib/config.ts'
import { configMistakes, isConfigError } from '../lib/errors/config-error.ts'

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
      maxEventAgeSeconds: DEFAULTS.MAX_EVENT_AGE_SECONDS,
    })
    expect(config.delivery.concurrency).toBe(10)
    expect(config.courier.groupTenants).toBe(false)
    expect(config.courier.maxRps).toBeUndefined()
    // SQS takes 1 MiB per message and per batch; no body over 6,291,456 − 512 can reach Lambda.
    expect(config.queue.batchMaxBytes).toBe(1_048_576)
    expect(config.ingest.maxBodyBytes).toBe(6_290_944)
    expect(config.stage).toBe('local')
    expect(parseConfig({ ...QUEUES, RELAY_STAGE: 'prod' }).stage).toBe('prod')
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

  it('reads the previous secret and token of a rotation, and refuses one without a current value', () => {
    const config = parseConfig({
      ...QUEUES,
      SEGMENT_SHARED_SECRET_PARAMETER: '/r/s',
      SEGMENT_SHARED_SECRET_PREVIOUS_PARAMETER: '/r/s-previous',
      INGEST_TOKEN: 't2',
      INGEST_TOKEN_PREVIOUS: 't1',
    })

    expect(config.ingest.previousSharedSecret).toEqual({ parameter: '/r/s-previous' })
    expect(config.ingest.previousToken).toEqual({ value: 't1' })
    const alone = failure({ INGEST_TOKEN_PREVIOUS: 't1' })
    expect(alone.variable).toBe('INGEST_TOKEN_PREVIOUS')
    expect(alone.message).toMatch(/only used while rotating INGEST_TOKEN/)
  })

  it.each([
    [{ COURIER_REGION: 'ap' }, 'COURIER_REGION', /"us" or "eu"/],
    [{ RETRY_BASE_SECONDS: 'ten' }, 'RETRY_BASE_SECONDS', /whole number from 1 to 35000/],
    [
      { RETRY_BASE_SECONDS: '100', RETRY_MAX_SECONDS: '50' },
      'RETRY_MAX_SECONDS',
      /at least RETRY_BASE_SECONDS/,
    ],
    [{ DELIVERY_CONCURRENCY: '0' }, 'DELIVERY_CONCURRENCY', /from 1 to 100/],
    [{ COURIER_GROUP_TENANTS: 'maybe' }, 'COURIER_GROUP_TENANTS', /true or false/],
    [{ COURIER_MAX_RPS: '-3' }, 'COURIER_MAX_RPS', /positive number/],
    [{ COURIER_BASE_URL: 'ftp://x' }, 'COURIER_BASE_URL', /http\(s\) URL/],
    [{ COURIER_BASE_URL: 'http://api.courier.com' }, 'COURIER_BASE_URL', /must be an https:\/\/ URL/],
    [{ SQS_BATCH_MAX_BYTES: '2000000' }, 'SQS_BATCH_MAX_BYTES', /1024 to 1048576/],
    [{ QUEUE_URL: '' }, 'QUEUE_URL', /is required/],
    [{ RELAY_STAGE: 'prod stage' }, 'RELAY_STAGE', /stage name/],
    [{ QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/1/q.fifo' }, 'DLQ_URL', /must be a FIFO queue/],
    [{ DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/1/dlq.fifo' }, 'DLQ_URL', /must be a standard queue/],
  ])('refuses %j naming the variable and what is allowed', (env, variable, message) => {
    const error = failure(env as Record<string, string>)
    expect(error.variable).toBe(variable)
    expect(error.message).toMatch(message)
    expect(error.message.startsWith(`${variable}: `)).toBe(true)
  })

  it('reports every mistake at once, one line each, in one pass', () => {
    let thrown: unknown
    try {
      parseConfig({ ...QUEUES, COURIER_REGION: 'ap', DELIVERY_CONCURRENCY: '0', INGEST_TOKEN_PREVIOUS: 't1' })
    } catch (error) {
      thrown = error
    }

    expect(configMistakes(thrown)?.map((mistake) => mistake.variable)).toEqual([
      'COURIER_REGION',
      'DELIVERY_CONCURRENCY',
      'INGEST_TOKEN_PREVIOUS',
    ])
    expect((thrown as Error).message.split('\n')).toEqual([
      'COURIER_REGION: must be "us" or "eu", got "ap"',
      'DELIVERY_CONCURRENCY: must be a whole number from 1 to 100, got "0"',
      expect.stringMatching(/^INGEST_TOKEN_PREVIOUS: is only used while rotating INGEST_TOKEN/),
    ])
  })

  it('tells a FIFO pair from a standard one by the .fifo the queue names end with', () => {
    const fifo = parseConfig({
      ...QUEUES,
      QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/1/q.fifo',
      DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/1/dlq.fifo',
    })
    expect(fifo.queue.fifo).toBe(true)
    expect(parseConfig(QUEUES).queue.fifo).toBe(false)
  })

  it('names every setting it reads, from the schema', () => {
    expect(SETTING_NAMES).toContain('COURIER_BASE_URL')
    expect(SETTING_NAMES).toContain('INGEST_TOKEN_PREVIOUS_PARAMETER')
    expect(LOCAL_SETTING_NAMES).toEqual([
      'PORT',
      'SQS_PORT',
      'COURIER_SANDBOX_PORT',
      'DELIVER_BATCH_SIZE',
      'DELIVER_TIMEOUT_SECONDS',
      'VISIBILITY_TIMEOUT_SECONDS',
      'AUDIENCE_BATCHING_WINDOW_SECONDS',
      'QUEUE_TYPE',
    ])
  })

  it('documents every setting in the README', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    const missing = [...SETTING_NAMES, ...LOCAL_SETTING_NAMES].filter(
      (name) => !readme.includes(`\`${name}\``),
    )
    expect(missing).toEqual([])
  })

  it('names the missing Courier key the deliver function needs', () => {
    const config = parseConfig(QUEUES)

    expect(() => courierAuthToken(config)).toThrow(/^COURIER_AUTH_TOKEN: is required/)
    expect(courierAuthToken(parseConfig({ ...QUEUES, COURIER_AUTH_TOKEN_PARAMETER: '/p' }))).toEqual({
      parameter: '/p',
    })
  })
})

describe('npm start settings', () => {
  const localFailure = (env: Record<string, string>) => {
    try {
      parseLocalConfig(env)
    } catch (error) {
      if (isConfigError(error)) return { variable: error.variable, message: error.message }
      throw error
    }
    throw new Error('expected a ConfigError')
  }

  it('defaults to ports clear of LocalStack and a visibility timeout of 6 × the deliver timeout', () => {
    expect(parseLocalConfig({})).toEqual({
      port: 3000,
      sqsPort: 3002,
      sandboxPort: 3001,
      deliverBatchSize: 10,
      deliverTimeoutSeconds: 60,
      visibilityTimeoutSeconds: 360,
      audienceBatchingWindowSeconds: 20,
      queueType: 'fifo',
    })
    expect(parseLocalConfig({ QUEUE_TYPE: 'standard' }).queueType).toBe('standard')
    expect(() => parseLocalConfig({ QUEUE_TYPE: 'ordered' })).toThrow(
      /QUEUE_TYPE: must be "fifo" or "standard"/,
    )
    expect(Object.values(LOCAL_DEFAULTS)).not.toContain(4566)
    expect(parseLocalConfig({ DELIVER_TIMEOUT_SECONDS: '30' }).visibilityTimeoutSeconds).toBe(180)
    expect(parseLocalConfig({ PORT: '0', SQS_PORT: '0' })).toMatchObject({ port: 0, sqsPort: 0 })
  })

  it.each([
    [{ PORT: '70000' }, 'PORT', /port number from 0 to 65535/],
    [{ SQS_PORT: 'abc' }, 'SQS_PORT', /port number from 0 to 65535 \(0 picks a free port\), got "abc"/],
    [{ COURIER_SANDBOX_PORT: '-1' }, 'COURIER_SANDBOX_PORT', /port number/],
    [{ DELIVER_BATCH_SIZE: '0' }, 'DELIVER_BATCH_SIZE', /from 1 to 10, got "0"/],
    [{ DELIVER_BATCH_SIZE: '11' }, 'DELIVER_BATCH_SIZE', /from 1 to 10, got "11"/],
    [{ DELIVER_TIMEOUT_SECONDS: '901' }, 'DELIVER_TIMEOUT_SECONDS', /from 30 to 900/],
    // Below 30 s the deliver function has no time left after its finishing margin.
    [{ DELIVER_TIMEOUT_SECONDS: '10' }, 'DELIVER_TIMEOUT_SECONDS', /from 30 to 900, got "10"/],
    [
      { VISIBILITY_TIMEOUT_SECONDS: '359' },
      'VISIBILITY_TIMEOUT_SECONDS',
      /from 360 \(6 × DELIVER_TIMEOUT_SECONDS=60/,
    ],
    [
      { DELIVER_TIMEOUT_SECONDS: '30', VISIBILITY_TIMEOUT_SECONDS: '179' },
      'VISIBILITY_TIMEOUT_SECONDS',
      /from 180 .* to 43200, got "179"/,
    ],
  ])('refuses %j naming the variable, the value and what is allowed', (env, variable, message) => {
    const error = localFailure(env as Record<string, string>)
    expect(error.variable).toBe(variable)
    expect(error.message).toMatch(message)
    expect(error.message.startsWith(`${variable}: `)).toBe(true)
  })
})
