/**
 * `npm start`: the whole relay on one machine. An embedded SQS (events queue + DLQ with the
 * deployed redrive policy), the ingest function behind http://127.0.0.1:$PORT/segment, a
 * poller that invokes the deliver function as Lambda's SQS event source does, and Courier:
 * the real API when COURIER_AUTH_TOKEN is set, otherwise a local sandbox that shows what it
 * received. COURIER_BASE_URL always wins. An embedded DynamoDB holds the audience list sync's
 * membership ledger. The functions are imported from functions/, with the
 * environment the deployed functions get, so local and deployed behaviour cannot drift.
 *
 * Every setting is validated before anything listens: a mistake ends the process with status 2
 * and one line naming the variable, the value and what is allowed (a ConfigError's message).
 * Every listener binds 127.0.0.1. The queues live in this process's memory: Ctrl-C drops them.
 *
 * What the functions log is kept as CloudWatch would keep it (relay-log.ts): `npm run trace --
 * --local` and the status page at http://127.0.0.1:$PORT/ read it. Ctrl-C ends the process at
 * once, whatever Courier is doing: nothing here is worth waiting for, since the queues die with
 * it; it says what was dropped. `lib/local/start.mjs` checks the Node version before this file.
 */

import { courierAuthToken } from '../config.ts'
import { configMistakes } from '../errors/config-error.ts'
import { checkCourier, courierCheckLine } from './courier-check.ts'
import type { CourierSandbox } from './courier-sandbox.ts'
import { LOOPBACK } from './loopback.ts'
import type { LocalQueues } from './queues.ts'
import { createRelayLog, type RelayLog, tapOutput } from './relay-log.ts'
import type { Poller, SqsHandler } from './sqs-poller.ts'
import { ensureFree, LOCAL_QUEUE_NAME, listening, validateStart } from './start-settings.ts'
import { droppedLine, type QueueDepth } from './status-page.ts'

// Only what validation needs is imported up front: the SDK, the emulator and the handlers load
// once the settings and ports are known to be right, so a mistake is answered at once, not after
// a second of loading.

const SANDBOX_TOKEN = 'sandbox-token'
/** As deployed (serverless.yml, the audiences function's event source and timeout). */
const AUDIENCE_BATCH_SIZE = 1_000
const AUDIENCE_TIMEOUT_SECONDS = 300

/** Each queue's depth, by its name, from the emulator's own view (no SQS call: it answers at once). */
const queueDepths = (queues: LocalQueues): Record<string, QueueDepth> => {
  const depth = (url: string): QueueDepth => {
    const messages = queues.server.inspectQueue(url.split('/').pop() as string)?.messages
    return {
      ready: messages?.ready.length ?? 0,
      inFlight: messages?.inflight.length ?? 0,
      delayed: messages?.delayed.length ?? 0,
    }
  }
  return {
    events: depth(queues.queueUrl),
    audiences: depth(queues.audienceQueueUrl),
    dlq: depth(queues.dlqUrl),
  }
}

const main = async (env: NodeJS.ProcessEnv, relayLog: RelayLog) => {
  const { local, config, courier } = validateStart(env)
  await ensureFree([
    ['PORT', local.port],
    ['SQS_PORT', local.sqsPort],
    ...(courier.kind === 'sandbox' ? [['COURIER_SANDBOX_PORT', local.sandboxPort] as const] : []),
  ])
  const [
    { relayPages },
    { AUDIENCE_SYNC_INSTANCES },
    { createSqsClient },
    { buildTestEvent, curlCommand },
    { startCourierSandbox },
    { startLocalDynamoDb },
    { startLocalQueues },
    { startLocalServer },
    { startPoller },
  ] = await Promise.all([
    import('./relay-pages.ts'),
    import('../audiences/list-sync.ts'),
    import('../queue/sqs-client.ts'),
    import('../segment/test-event.ts'),
    import('./courier-sandbox.ts'),
    import('./dynamodb.ts'),
    import('./queues.ts'),
    import('./server.ts'),
    import('./sqs-poller.ts'),
  ])

  const queues = await listening('SQS_PORT', local.sqsPort, () =>
    startLocalQueues({
      port: local.sqsPort,
      name: LOCAL_QUEUE_NAME,
      queueType: local.queueType,
      visibilityTimeoutSeconds: local.visibilityTimeoutSeconds,
    }),
  )

  // The list sync's membership ledger, on a port of its own choosing: nothing outside needs it.
  const dynamodb = await startLocalDynamoDb()

  let sandbox: CourierSandbox | undefined
  let courierLabel: string
  if (courier.kind === 'configured') {
    courierLabel = courier.label
  } else {
    sandbox = await listening('COURIER_SANDBOX_PORT', local.sandboxPort, () =>
      startCourierSandbox({
        port: local.sandboxPort,
        authToken: SANDBOX_TOKEN,
        log: (line) => console.log(line),
      }),
    )
    env.COURIER_BASE_URL = sandbox.url
    env.COURIER_AUTH_TOKEN = SANDBOX_TOKEN
    courierLabel = `the local Courier sandbox at ${sandbox.url}`
  }

  Object.assign(env, {
    QUEUE_URL: queues.queueUrl,
    DLQ_URL: queues.dlqUrl,
    AUDIENCE_QUEUE_URL: queues.audienceQueueUrl,
    AWS_ENDPOINT_URL_SQS: queues.endpoint,
    AUDIENCE_TABLE_NAME: dynamodb.tableName,
    AWS_ENDPOINT_URL_DYNAMODB: dynamodb.endpoint,
    AWS_REGION: env.AWS_REGION ?? 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_SESSION_TOKEN: '',
    // On: the metrics' EMF lines carry Courier's rate per endpoint class to the status page
    // (relay-log.ts reads them and prints none).
    POWERTOOLS_METRICS_DISABLED: env.POWERTOOLS_METRICS_DISABLED ?? 'false',
  })

  // The same entry points Lambda runs, configured from the environment above.
  // One deliver module per concurrent poller, as Lambda runs one per instance: each has its own
  // pacer, clients and caches (a query string makes Node load a separate module instance).
  const concurrency = config.delivery.eventSourceMaxConcurrency
  const ingest = await import('../../functions/ingest.ts')
  const delivers: { handler: SqsHandler }[] = await Promise.all(
    Array.from({ length: concurrency }, (_, i) => import(`../../functions/deliver.ts?instance=${i}`)),
  )
  let depths = (): Record<string, QueueDepth> => ({})
  const server = await listening('PORT', local.port, () =>
    startLocalServer(ingest.handler, local.port, LOOPBACK, (url) => relayPages(relayLog, depths(), url)),
  )
  depths = () => queueDepths(queues)
  const poller = startPoller({
    sqs: createSqsClient({ endpoint: queues.endpoint }),
    queueUrl: queues.queueUrl,
    queueArn: queues.queueArn,
    handler: delivers.map((deliver) => deliver.handler),
    batchSize: local.deliverBatchSize,
    maxConcurrency: concurrency,
    waitTimeSeconds: 20,
    functionTimeoutMs: local.deliverTimeoutSeconds * 1_000,
  })

  // The audience list sync, drained in big batches as its event source does (serverless.yml).
  const audiences: { handler: SqsHandler }[] = await Promise.all(
    Array.from(
      { length: AUDIENCE_SYNC_INSTANCES },
      (_, i) => import(`../../functions/audiences.ts?instance=${i}`),
    ),
  )
  const audiencePoller = startPoller({
    sqs: createSqsClient({ endpoint: queues.endpoint }),
    queueUrl: queues.audienceQueueUrl,
    queueArn: queues.audienceQueueArn,
    handler: audiences.map((instance) => instance.handler),
    batchSize: AUDIENCE_BATCH_SIZE,
    batchingWindowMs: local.audienceBatchingWindowSeconds * 1_000,
    maxConcurrency: AUDIENCE_SYNC_INSTANCES,
    waitTimeSeconds: 20,
    functionTimeoutMs: AUDIENCE_TIMEOUT_SECONDS * 1_000,
  })

  const secret = env.SEGMENT_SHARED_SECRET
  const token = env.INGEST_TOKEN
  /** Segment signs only a batch's first event, so a batch needs the token (lib/ingest/segment-auth.ts). */
  const batchingLine = (secret: string | undefined, token: string | undefined) =>
    secret && !token
      ? '  Batching          needs INGEST_TOKEN: with the shared secret alone a batch of more than one event is refused 401 (Segment signs only its first event)\n'
      : token
        ? '  Batching          on: INGEST_TOKEN covers every event of a batch\n'
        : ''
  const sample = buildTestEvent({ type: 'identify' })
  console.log(`
segment-courier-relay is running locally

  Segment webhook   POST ${server.url}
  Status page       ${server.url.replace(/\/segment$/, '/')}   (npm run trace -- --local --user <userId> | --message-id <id>)
  Courier           ${courierLabel}${sandbox ? `\n  Sandbox controls  ${sandbox.url}/_sandbox/received · ${sandbox.url}/_sandbox/state · POST ${sandbox.url}/_sandbox/faults` : ''}
  Embedded SQS      ${queues.endpoint}  (${local.queueType} queue ${queues.queueUrl.split('/').pop()}, DLQ ${queues.dlqUrl.split('/').pop()}, in memory)
  Embedded DynamoDB ${dynamodb.endpoint}  (the list sync's membership ledger, table ${dynamodb.tableName}, in memory)
  Inspect the DLQ   npm run dlq -- --local        Redrive it   npm run redrive -- --local
${batchingLine(secret, token)}${secret || token ? '' : '\n  WARNING: ingest is OPEN (no SEGMENT_SHARED_SECRET or INGEST_TOKEN). Fine on localhost, never deployed.\n'}
Send a ${secret ? 'signed ' : ''}test event (or run \`npm run send-test-event\` in another terminal):

${curlCommand(server.url, secret, sample, token)}

Ctrl-C stops everything; the queues live in memory, so events still queued are dropped.
`)

  if (courier.kind === 'configured') {
    const ref = courierAuthToken(config)
    // A token from SSM (…_PARAMETER) is the functions' to read; the check needs the value.
    if ('value' in ref) {
      void checkCourier(config.courier.baseUrl, ref.value).then((check) => {
        const line = courierCheckLine(check, courierLabel)
        if (line !== undefined) console.error(line)
      })
    }
  }

  onStop(() => {
    const line = droppedLine(queueDepths(queues), {
      records: poller.stats.inFlight + audiencePoller.stats.inFlight,
      requests: server.inFlight(),
    })
    for (const one of [poller, audiencePoller] as Poller[]) one.halt()
    return line
  })
}

/**
 * Ctrl-C (or SIGTERM) ends the process at once: the queues, the emulators and every call under
 * way live in this process, so there is nothing to finish and nothing worth waiting for (a
 * Courier that never answers included). It prints what was dropped first. A second Ctrl-C, should
 * the first be slow for any reason, exits without another word.
 */
let describeDrop: (() => string) | undefined
const onStop = (describe: () => string) => {
  describeDrop = describe
}
let signals = 0
const stop = () => {
  signals++
  if (signals > 1) process.exit(130)
  console.log('\nstopping…')
  try {
    if (describeDrop !== undefined) console.log(describeDrop())
  } finally {
    process.exit(0)
  }
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)

const relayLog = createRelayLog()
tapOutput(relayLog)
try {
  await main(process.env, relayLog)
} catch (error) {
  // Settings are wrong: one line each, no stack, status 2. Anything else is a bug and keeps its stack.
  const mistakes = configMistakes(error)
  if (mistakes === undefined) throw error
  for (const mistake of mistakes) console.error(mistake.message)
  process.exit(2)
}
