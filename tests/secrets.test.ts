import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { parseConfig } from '../lib/config.ts'
import { isConfigError } from '../lib/errors/config-error.ts'
import { createIngestHandler } from '../lib/ingest/handler.ts'
import { createLambdaContext } from '../lib/local/lambda-context.ts'
import { resolveSecret } from '../lib/secrets.ts'
import { segmentRequest, track } from './support/fixtures.ts'
import { startTestQueues, type TestQueues } from './support/queues.ts'

/**
 * The deployed secret path: SSM Parameter Store SecureStrings read at run time and cached.
 * A loopback server answers the SSM JSON protocol (GetParameter) the way SSM does, and counts
 * the calls, so the real Powertools provider and AWS SDK client are exercised.
 */

const PARAMETERS: Record<string, string> = {
  '/relay/test/shared-secret': 'ssm-shared-secret',
  '/relay/test/ingest-token': 'ssm-ingest-token',
  '/relay/test/shared-secret-previous': 'ssm-shared-secret-old',
}

let ssm: Server
const calls: { name: string; decrypt: boolean }[] = []
let queues: TestQueues

beforeAll(async () => {
  ssm = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk) => {
      body += chunk
    })
    request.on('end', () => {
      const input = JSON.parse(body) as { Name: string; WithDecryption?: boolean }
      calls.push({ name: input.Name, decrypt: input.WithDecryption === true })
      const value = PARAMETERS[input.Name]
      response.writeHead(value === undefined ? 400 : 200, { 'content-type': 'application/x-amz-json-1.1' })
      response.end(
        JSON.stringify(
          value === undefined
            ? { __type: 'ParameterNotFound', message: `${input.Name} not found` }
            : { Parameter: { Name: input.Name, Type: 'SecureString', Value: value, Version: 1 } },
        ),
      )
    })
  })
  await new Promise<void>((resolve) => ssm.listen(0, '127.0.0.1', resolve))
  process.env.AWS_ENDPOINT_URL_SSM = `http://127.0.0.1:${(ssm.address() as AddressInfo).port}`
  queues = await startTestQueues()
})
afterAll(async () => {
  delete process.env.AWS_ENDPOINT_URL_SSM
  await queues.stop()
  await new Promise((resolve) => ssm.close(resolve))
})
beforeEach(() => {
  calls.length = 0
})

describe('secrets from SSM Parameter Store', () => {
  it('reads a SecureString with decryption and caches it', async () => {
    const ref = { parameter: '/relay/test/ingest-token' }

    const first = await resolveSecret('INGEST_TOKEN', ref, 300)
    const second = await resolveSecret('INGEST_TOKEN', ref, 300)

    expect([first, second]).toEqual(['ssm-ingest-token', 'ssm-ingest-token'])
    expect(calls).toEqual([{ name: '/relay/test/ingest-token', decrypt: true }])
  })

  it('fails with a ConfigError naming the variable when the parameter is missing', async () => {
    const error = await resolveSecret('COURIER_AUTH_TOKEN', { parameter: '/relay/test/missing' }, 300).catch(
      (e: unknown) => e,
    )
    expect(isConfigError(error)).toBe(true)
    expect((error as { variable: string }).variable).toBe('COURIER_AUTH_TOKEN_PARAMETER')
    expect((error as Error).message).toMatch(/SSM parameter \/relay\/test\/missing could not be read/)
  })

  it('authenticates ingest with the shared secret read from SSM', async () => {
    const handler = createIngestHandler({
      config: parseConfig({
        QUEUE_URL: queues.queueUrl,
        DLQ_URL: queues.dlqUrl,
        SEGMENT_SHARED_SECRET_PARAMETER: '/relay/test/shared-secret',
      }),
      sqs: queues.sqs,
    })
    const body = JSON.stringify(track())

    const good = await handler(
      segmentRequest(body, { secret: 'ssm-shared-secret' }),
      createLambdaContext('i', 6_000),
    )
    const bad = await handler(segmentRequest(body, { secret: 'other' }), createLambdaContext('i', 6_000))

    expect([good.statusCode, bad.statusCode]).toEqual([200, 401])
  })

  it('during a rotation accepts the previous shared secret read from its own SSM parameter', async () => {
    // Prepare: deployed with sharedSecretPreviousParameter, as the README's rotation step 1 does
    const handler = createIngestHandler({
      config: parseConfig({
        QUEUE_URL: queues.queueUrl,
        DLQ_URL: queues.dlqUrl,
        SEGMENT_SHARED_SECRET_PARAMETER: '/relay/test/shared-secret',
        SEGMENT_SHARED_SECRET_PREVIOUS_PARAMETER: '/relay/test/shared-secret-previous',
      }),
      sqs: queues.sqs,
    })
    const body = JSON.stringify(track())
    const send = (secret: string) =>
      handler(segmentRequest(body, { secret }), createLambdaContext('i', 6_000)).then((r) => r.statusCode)

    // Act
    const statuses = [
      await send('ssm-shared-secret'),
      await send('ssm-shared-secret-old'),
      await send('other'),
    ]

    // Assess
    expect(statuses).toEqual([200, 200, 401])
    expect(calls.map((call) => call.name)).toContain('/relay/test/shared-secret-previous')
  })
})
