/**
 * `npm start`: the whole relay on one machine. An embedded SQS (events queue + DLQ with the
 * deployed redrive policy), the ingest function behind http://localhost:$PORT/segment, a
 * poller that invokes the deliver function as Lambda's SQS event source does, and Courier:
 * the real API when COURIER_AUTH_TOKEN is set, otherwise a local sandbox that shows what it
 * received. COURIER_BASE_URL always wins. The functions are imported from functions/, with the
 * environment the deployed functions get, so local and deployed behaviour cannot drift.
 */

import { createSqsClient } from '../queue/sqs-client.ts'
import { buildTestEvent, curlCommand } from '../segment/test-event.ts'
import { type CourierSandbox, startCourierSandbox } from './courier-sandbox.ts'
import { startLocalQueues } from './queues.ts'
import { startLocalServer } from './server.ts'
import { type SqsHandler, startPoller } from './sqs-poller.ts'

const SANDBOX_TOKEN = 'sandbox-token'
const LOCAL_QUEUE_NAME = 'segment-courier-relay-events'

const number = (name: string, fallback: number): number => {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 0) {
    console.error(`${name} must be a whole number, got "${raw}"`)
    process.exit(2)
  }
  return value
}

const main = async () => {
  const env = process.env
  const port = number('PORT', 3000)
  const queues = await startLocalQueues({
    port: number('SQS_PORT', 4566),
    name: LOCAL_QUEUE_NAME,
    visibilityTimeoutSeconds: number('VISIBILITY_TIMEOUT_SECONDS', 60),
  })

  let sandbox: CourierSandbox | undefined
  let courierLabel: string
  if (env.COURIER_BASE_URL) {
    courierLabel = `${env.COURIER_BASE_URL} (COURIER_BASE_URL)`
  } else if (env.COURIER_AUTH_TOKEN || env.COURIER_AUTH_TOKEN_PARAMETER) {
    courierLabel = `the real Courier API (${env.COURIER_REGION ?? 'us'} region)`
  } else {
    sandbox = await startCourierSandbox({
      port: number('COURIER_SANDBOX_PORT', 3001),
      authToken: SANDBOX_TOKEN,
      log: (line) => console.log(line),
    })
    env.COURIER_BASE_URL = sandbox.url
    env.COURIER_AUTH_TOKEN = SANDBOX_TOKEN
    courierLabel = `the local Courier sandbox at ${sandbox.url}`
  }

  Object.assign(env, {
    QUEUE_URL: queues.queueUrl,
    DLQ_URL: queues.dlqUrl,
    AWS_ENDPOINT_URL_SQS: queues.endpoint,
    AWS_REGION: env.AWS_REGION ?? 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_SESSION_TOKEN: '',
    POWERTOOLS_METRICS_DISABLED: env.POWERTOOLS_METRICS_DISABLED ?? 'true',
  })

  // The same entry points Lambda runs, configured from the environment above.
  // One deliver module per concurrent poller, as Lambda runs one per instance: each has its own
  // pacer, clients and caches (a query string makes Node load a separate module instance).
  const concurrency = number('DELIVER_MAX_CONCURRENCY', 5)
  const ingest = await import('../../functions/ingest.ts')
  const delivers: { handler: SqsHandler }[] = await Promise.all(
    Array.from({ length: concurrency }, (_, i) => import(`../../functions/deliver.ts?instance=${i}`)),
  )
  const server = await startLocalServer(ingest.handler, port, env.HOST ?? '127.0.0.1')
  const poller = startPoller({
    sqs: createSqsClient({ endpoint: queues.endpoint }),
    queueUrl: queues.queueUrl,
    queueArn: queues.queueArn,
    handler: delivers.map((deliver) => deliver.handler),
    batchSize: number('DELIVER_BATCH_SIZE', 10),
    maxConcurrency: concurrency,
    waitTimeSeconds: 20,
    functionTimeoutMs: number('DELIVER_TIMEOUT_SECONDS', 60) * 1_000,
  })

  const secret = env.SEGMENT_SHARED_SECRET
  const token = env.INGEST_TOKEN
  const sample = buildTestEvent({ type: 'identify' })
  console.log(`
segment-courier-relay is running locally

  Segment webhook   POST ${server.url}
  Courier           ${courierLabel}${sandbox ? `\n  Sandbox controls  ${sandbox.url}/_sandbox/received · ${sandbox.url}/_sandbox/state · POST ${sandbox.url}/_sandbox/faults` : ''}
  Embedded SQS      ${queues.endpoint}  (queue ${LOCAL_QUEUE_NAME}, DLQ ${LOCAL_QUEUE_NAME}-dlq)
  Inspect the DLQ   npm run dlq -- --local        Redrive it   npm run redrive -- --local
${secret || token ? '' : '\n  WARNING: ingest is OPEN (no SEGMENT_SHARED_SECRET or INGEST_TOKEN). Fine on localhost, never deployed.\n'}
Send a${secret ? ' signed' : 'n'} test event:

${curlCommand(server.url, secret, sample, token)}

Ctrl-C stops everything.
`)

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    console.log('\nstopping…')
    await server.stop()
    await poller.stop()
    await sandbox?.stop()
    await queues.stop()
    process.exit(0)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

await main()
