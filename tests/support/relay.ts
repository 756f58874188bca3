import { DeleteItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb'
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from '@aws-sdk/client-sqs'
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda'
import { afterAll, beforeAll, beforeEach } from 'vitest'
import type { MembershipLedger } from '../../lib/audiences/membership-ledger.ts'
import { parseConfig } from '../../lib/config.ts'
import { createDeletionMarks, DELETED_PEOPLE } from '../../lib/deletion-marks.ts'
import { createDeliverHandler, type DeliverHandlerOptions } from '../../lib/deliver/handler.ts'
import { createLearntRates } from '../../lib/deliver/learnt-rates.ts'
import { createDynamoDbClient } from '../../lib/dynamodb-client.ts'
import { createIngestHandler } from '../../lib/ingest/handler.ts'
import { type CourierSandbox, startCourierSandbox } from '../../lib/local/courier-sandbox.ts'
import { type LocalDynamoDb, startLocalDynamoDb } from '../../lib/local/dynamodb.ts'
import { createLambdaContext } from '../../lib/local/lambda-context.ts'
import { type Poller, recordsToDelete, startPoller, toSqsRecord } from '../../lib/local/sqs-poller.ts'
import { eventDeduplicationId, messageGroupId } from '../../lib/queue/message-group.ts'
import { createSqsClient, type SqsTimeouts } from '../../lib/queue/sqs-client.ts'
import { fifoFields, isFifoQueueUrl, outgoingMessage, toSqsAttributes } from '../../lib/queue/sqs-message.ts'
import { deriveMessageId } from '../../lib/segment/event.ts'
import { createLogger } from '../../lib/telemetry.ts'
import type { EventFixture } from './fixtures.ts'
import { clearQueues, peek, startTestQueues, type TestQueues } from './queues.ts'

/**
 * The relay's real parts wired together for tests, as `npm start` wires them: embedded SQS,
 * the Courier sandbox on loopback, the ingest and deliver handlers, and the local event source.
 */

export const SANDBOX_TOKEN = 'sandbox-token'

/** Small retry knobs so recoveries take seconds, not minutes. */
export const FAST_RETRIES = {
  RETRY_BASE_SECONDS: '1',
  RETRY_MAX_SECONDS: '2',
  RATE_LIMIT_DELAY_SECONDS: '1',
  AUTH_ERROR_DELAY_SECONDS: '30',
  COURIER_TIMEOUT_MS: '2000',
}

/**
 * Bounds for the deliver function's SQS calls in tests: generous, so a loaded machine cannot
 * time a call out, and the worker sizes its finishing margin from them as it does in Lambda.
 */
export const TEST_SQS_TIMEOUTS: SqsTimeouts = {
  maxAttempts: 2,
  connectionTimeoutMs: 1_000,
  requestTimeoutMs: 2_000,
}

export interface TestRelay {
  readonly queues: TestQueues
  readonly sandbox: CourierSandbox
  /** The embedded DynamoDB holding the list sync's membership ledger (AUDIENCE_TABLE_NAME in env). */
  readonly dynamodb: LocalDynamoDb
  /** A list sync instance's membership ledger: its own client on `table` (default: env's), as each Lambda instance has. */
  readonly ledger: (table?: string) => MembershipLedger
  readonly env: Record<string, string>
  readonly deliver: (options?: DeliverHandlerOptions) => ReturnType<typeof createDeliverHandler>
  /** Empties the deletion marks, so one test's deletions do not cover another's events. */
  readonly forgetDeletions: () => Promise<void>
  readonly stop: () => Promise<void>
}

export const startTestRelay = async (
  env: Record<string, string> = {},
  queueOptions: Parameters<typeof startTestQueues>[0] = {},
): Promise<TestRelay> => {
  const queues = await startTestQueues(queueOptions)
  const sandbox = await startCourierSandbox({ authToken: SANDBOX_TOKEN })
  const dynamodb = await startLocalDynamoDb()
  // Any deliver handler made from `env` in this process (as npm start makes them) reaches the
  // embedded DynamoDB for its deletion marks: the SDK reads this variable when a client is made.
  const endpointBefore = process.env.AWS_ENDPOINT_URL_DYNAMODB
  process.env.AWS_ENDPOINT_URL_DYNAMODB = dynamodb.endpoint
  const dynamoDbClient = () =>
    createDynamoDbClient({
      endpoint: dynamodb.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    })
  const deliverSqs = createSqsClient({ endpoint: queues.endpoint, region: 'us-east-1' }, TEST_SQS_TIMEOUTS)
  const fullEnv = {
    QUEUE_URL: queues.queueUrl,
    DLQ_URL: queues.dlqUrl,
    AUDIENCE_QUEUE_URL: queues.audienceQueueUrl,
    AUDIENCE_TABLE_NAME: dynamodb.tableName,
    COURIER_BASE_URL: sandbox.url,
    COURIER_AUTH_TOKEN: SANDBOX_TOKEN,
    ...FAST_RETRIES,
    ...env,
  }
  return {
    queues,
    sandbox,
    dynamodb,
    ledger: dynamodb.ledger,
    env: fullEnv,
    deliver: (options = {}) =>
      createDeliverHandler({
        config: parseConfig(fullEnv),
        sqs: deliverSqs,
        sqsTimeouts: TEST_SQS_TIMEOUTS,
        logger: createLogger('deliver-test'),
        // This relay's own DynamoDB, whatever the environment says (two relays may run in one file).
        deletionMarks: createDeletionMarks(dynamoDbClient(), dynamodb.tableName),
        // the fleet's learnt rates in the embedded DynamoDB, through a client of this instance
        learntRates: createLearntRates(dynamoDbClient(), dynamodb.tableName),
        ...options,
      }),
    forgetDeletions: async () => {
      const client = dynamoDbClient()
      try {
        const { Items = [] } = await client.send(
          new QueryCommand({
            TableName: dynamodb.tableName,
            KeyConditionExpression: '#list = :deleted',
            ExpressionAttributeNames: { '#list': 'list' },
            ExpressionAttributeValues: { ':deleted': { S: DELETED_PEOPLE } },
          }),
        )
        for (const item of Items) {
          await client.send(
            new DeleteItemCommand({
              TableName: dynamodb.tableName,
              Key: { list: item.list as { S: string }, member: item.member as { S: string } },
            }),
          )
        }
      } finally {
        client.destroy()
      }
    },
    stop: async () => {
      deliverSqs.destroy()
      if (endpointBefore === undefined) delete process.env.AWS_ENDPOINT_URL_DYNAMODB
      else process.env.AWS_ENDPOINT_URL_DYNAMODB = endpointBefore
      await sandbox.stop()
      await dynamodb.stop()
      await queues.stop()
    },
  }
}

/** One relay for a test file, emptied (queues and sandbox) before each test. */
export const useTestRelay = (onStart: (relay: TestRelay) => void) => {
  let relay: TestRelay
  beforeAll(async () => {
    relay = await startTestRelay()
    onStart(relay)
  })
  afterAll(() => relay.stop())
  beforeEach(async () => {
    clearQueues(relay.queues)
    relay.sandbox.reset()
    await relay.forgetDeletions()
  })
}

/**
 * Puts events on the events queue as ingest does (exact text, type and messageId attributes; on a
 * FIFO queue the user's group and the messageId as deduplication id), in the order given.
 */
export const enqueueEvents = async (relay: TestRelay, events: readonly (EventFixture | string)[]) => {
  const fifo = isFifoQueueUrl(relay.queues.queueUrl)
  for (let i = 0; i < events.length; i += 10) {
    const entries = events.slice(i, i + 10).map((event, index) => {
      const body = typeof event === 'string' ? event : JSON.stringify(event)
      const parsed = JSON.parse(body) as { type?: string; messageId?: string }
      const message = outgoingMessage(
        body,
        { type: parsed.type, messageId: parsed.messageId },
        {
          group: messageGroupId(parsed, body),
          // A deletion notification has no messageId: ingest derives one from its text.
          deduplicationId: eventDeduplicationId(parsed.messageId ?? deriveMessageId(body)),
        },
      )
      return {
        Id: String(index),
        MessageBody: message.body,
        MessageAttributes: toSqsAttributes(message.attributes),
        ...fifoFields(message, fifo),
      }
    })
    await relay.queues.sqs.send(
      new SendMessageBatchCommand({ QueueUrl: relay.queues.queueUrl, Entries: entries }),
    )
  }
}

/** One receive of up to 10 records, shaped as Lambda hands them over. */
export const receiveRecords = async (relay: TestRelay): Promise<SQSRecord[]> => {
  const result = await relay.queues.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: relay.queues.queueUrl,
      MaxNumberOfMessages: 10,
      MessageSystemAttributeNames: ['All'],
      MessageAttributeNames: ['All'],
      WaitTimeSeconds: 0,
    }),
  )
  return (result.Messages ?? []).map((message) => toSqsRecord(message, relay.queues.queueArn, 'us-east-1'))
}

/**
 * Invokes a deliver handler on records with a Lambda-like context, then does what the event
 * source does with the answer: deletes every record not reported in batchItemFailures.
 */
export const invokeDeliver = async (
  handler: ReturnType<typeof createDeliverHandler>,
  records: SQSRecord[],
  relay?: TestRelay,
  timeoutMs = 60_000,
): Promise<SQSBatchResponse> => {
  const response = await handler({ Records: records }, createLambdaContext('deliver', timeoutMs))
  const done = recordsToDelete(records, response)
  if (relay !== undefined && done.length > 0) {
    await relay.queues.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: relay.queues.queueUrl,
        Entries: done.map((record, i) => ({ Id: String(i), ReceiptHandle: record.receiptHandle })),
      }),
    )
  }
  return response
}

/** Seconds until each in-flight message (by SQS messageId) becomes visible again. */
export const visibilityOf = (relay: TestRelay): Map<string, number> => {
  const state = relay.queues.server.inspectQueue(relay.queues.queueUrl.split('/').pop() as string)
  const now = Date.now()
  return new Map(
    (state?.messages.inflight ?? []).map((entry) => [
      entry.message.messageId,
      (entry.visibilityDeadline - now) / 1_000,
    ]),
  )
}

/** Makes a retried record visible at once, standing in for the wait the policy chose. */
export const skipWait = (relay: TestRelay, record: SQSRecord) =>
  relay.queues.sqs.send(
    new ChangeMessageVisibilityCommand({
      QueueUrl: relay.queues.queueUrl,
      ReceiptHandle: record.receiptHandle,
      VisibilityTimeout: 0,
    }),
  )

export const dlqMessages = (relay: TestRelay) => peek(relay.queues, relay.queues.dlqUrl)
export const queuedMessages = (relay: TestRelay) => peek(relay.queues, relay.queues.queueUrl)

export const startRelayPoller = (
  relay: TestRelay,
  options: { maxConcurrency?: number; batchSize?: number } = {},
): Poller =>
  startPoller({
    sqs: relay.queues.sqs,
    queueUrl: relay.queues.queueUrl,
    queueArn: relay.queues.queueArn,
    // One deliver instance per poller, as Lambda runs them.
    handler: Array.from({ length: options.maxConcurrency ?? 2 }, () => relay.deliver()),
    waitTimeSeconds: 1,
    maxConcurrency: options.maxConcurrency ?? 2,
    batchSize: options.batchSize ?? 10,
    functionTimeoutMs: 60_000,
    onError: () => undefined,
  })

export const ingestHandlerFor = (relay: TestRelay) =>
  createIngestHandler({
    config: parseConfig(relay.env),
    sqs: relay.queues.sqs,
    logger: createLogger('ingest-test'),
  })

export const until = async (condition: () => boolean, timeoutMs = 20_000, what = 'condition') => {
  const started = Date.now()
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what} not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
