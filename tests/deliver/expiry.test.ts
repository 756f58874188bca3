import {
  ChangeMessageVisibilityBatchCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import type { SQSRecord } from 'aws-lambda'
import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  DEFAULTS,
  parseConfig,
  SQS_MAX_RETENTION_SECONDS,
  SQS_MAX_VISIBILITY_SECONDS,
} from '../../lib/config.ts'
import type { CourierClient, SendResult } from '../../lib/courier/client.ts'
import type { Outcome } from '../../lib/courier/outcome.ts'
import { unpaced } from '../../lib/courier/pacer.ts'
import { deliverBatch } from '../../lib/deliver/batch.ts'
import { createDeliverInstance } from '../../lib/deliver/instance.ts'
import { createLambdaContext } from '../../lib/local/lambda-context.ts'
import { toSqsRecord } from '../../lib/local/sqs-poller.ts'
import { QUEUE_SETTINGS } from '../../lib/queue/settings.ts'
import { finishMarginMs } from '../../lib/queue/settle-batch.ts'
import { createSqsClient, type SqsTimeouts } from '../../lib/queue/sqs-client.ts'
import { changeVisibility, visibilityLeftSeconds } from '../../lib/queue/visibility.ts'
import { createLogger } from '../../lib/telemetry.ts'
import { track } from '../support/fixtures.ts'
import { hang, startHttpStub } from '../support/http-stub.ts'
import {
  dlqMessages,
  enqueueEvents,
  invokeDeliver,
  queuedMessages,
  receiveRecords,
  startTestRelay,
  type TestRelay,
  useTestRelay,
  visibilityOf,
} from '../support/relay.ts'

/**
 * Nothing expires unseen: a record still failing once it is older than MAX_EVENT_AGE_SECONDS, or
 * on its last allowed receive, is dead-lettered by the worker with the reason, before SQS's
 * retention could delete it or SQS could move it to the DLQ without one. Every retry delay fits
 * SQS's 12 hours from the receive, and a slow SQS cannot make the invocation time out.
 */

let relay: TestRelay
useTestRelay((started) => {
  relay = started
})

const DAY_MS = 86_400_000
const sentDaysAgo = (record: SQSRecord, days: number): SQSRecord => ({
  ...record,
  attributes: { ...record.attributes, SentTimestamp: String(Date.now() - days * DAY_MS) },
})

describe('records older than MAX_EVENT_AGE_SECONDS', () => {
  it('dead-letters a record queued 13 days ago that fails again, with the age and the last answer', async () => {
    // Prepare: Courier down; the queue says the record was sent 13 days ago (default limit: 12)
    relay.sandbox.setFaults({ outage: true })
    const event = track()
    await enqueueEvents(relay, [event])
    const [record] = await receiveRecords(relay)

    // Act
    const response = await invokeDeliver(relay.deliver(), [sentDaysAgo(record as SQSRecord, 13)], relay)

    // Assess: not retried; in the DLQ with why and Courier's last status; gone from the queue
    expect(response.batchItemFailures).toEqual([])
    const [dead] = dlqMessages(relay)
    expect(dead?.body).toBe(JSON.stringify(event))
    expect(dead?.messageAttributes.reason?.StringValue).toMatch(
      /^expired after 13\.0 days of retries \(MAX_EVENT_AGE_SECONDS 1036800\); last: Courier answered 503/,
    )
    expect(dead?.messageAttributes.status?.StringValue).toBe('503')
    expect(dead?.messageAttributes.messageId?.StringValue).toBe(event.messageId)
    expect(queuedMessages(relay)).toHaveLength(0)
  })

  it.each(['fifo', 'standard'] as const)(
    'on a %s queue too: dead-letters the expired record with its reason, into the DLQ of its type',
    async (queueType) => {
      const own = await startTestRelay({}, { queueType })
      try {
        own.sandbox.setFaults({ outage: true })
        const event = track()
        await enqueueEvents(own, [event])
        const [record] = await receiveRecords(own)

        const response = await invokeDeliver(own.deliver(), [sentDaysAgo(record as SQSRecord, 12.5)], own)

        expect(response.batchItemFailures).toEqual([])
        const [dead] = dlqMessages(own)
        expect(dead?.messageAttributes.reason?.StringValue).toMatch(/^expired after 12\.5 days of retries/)
        expect(own.queues.dlqUrl.endsWith('.fifo')).toBe(queueType === 'fifo')
        // A FIFO DLQ needs the user's group; SQS resets the enqueue time there, as it does for any
        // message a function sends: the dead letter has 14 days of its own either way.
        expect(Boolean(dead?.messageGroupId)).toBe(queueType === 'fifo')
      } finally {
        await own.stop()
      }
    },
  )

  it('still delivers an old record Courier takes, and retries a young one', async () => {
    const [old, young] = [track(), track()]
    await enqueueEvents(relay, [old])
    const [oldRecord] = await receiveRecords(relay)
    const delivered = await invokeDeliver(relay.deliver(), [sentDaysAgo(oldRecord as SQSRecord, 13)], relay)
    relay.sandbox.setFaults({ outage: true })
    await enqueueEvents(relay, [young])
    const [youngRecord] = await receiveRecords(relay)

    const retried = await invokeDeliver(relay.deliver(), [sentDaysAgo(youngRecord as SQSRecord, 11)], relay)

    expect(delivered.batchItemFailures).toEqual([])
    expect(retried.batchItemFailures).toEqual([{ itemIdentifier: youngRecord?.messageId }])
    expect(dlqMessages(relay)).toEqual([])
  })

  it('dead-letters on the last receive SQS allows, instead of letting SQS move it without a reason', async () => {
    relay.sandbox.setFaults({ outage: true })
    await enqueueEvents(relay, [track(), track()])
    const [last, earlier] = (await receiveRecords(relay)) as [SQSRecord, SQSRecord]
    const withCount = (record: SQSRecord, count: number): SQSRecord => ({
      ...record,
      attributes: { ...record.attributes, ApproximateReceiveCount: String(count) },
    })

    const response = await invokeDeliver(
      relay.deliver(),
      [
        withCount(last, QUEUE_SETTINGS.maxReceiveCount),
        withCount(earlier, QUEUE_SETTINGS.maxReceiveCount - 1),
      ],
      relay,
    )

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: earlier.messageId }])
    const [dead] = dlqMessages(relay)
    expect(dead?.messageAttributes.reason?.StringValue).toMatch(
      /^gave up after 1000 receives over \d+ s \(maxReceiveCount 1000\); last: Courier answered 503/,
    )
  })

  it('rejects a MAX_EVENT_AGE_SECONDS that SQS retention could overtake', () => {
    expect(() =>
      parseConfig({ ...relay.env, MAX_EVENT_AGE_SECONDS: String(SQS_MAX_RETENTION_SECONDS) }),
    ).toThrow(/MAX_EVENT_AGE_SECONDS: must be a whole number from 1 to 1123200/)
    expect(parseConfig(relay.env).retry.maxEventAgeSeconds).toBe(DEFAULTS.MAX_EVENT_AGE_SECONDS)
  })
})

describe('SQS allows 12 hours of visibility from the receive, not from the change', () => {
  it('the local SQS refuses a change past receive + 12 h, as SQS does, and takes the capped one', async () => {
    // Prepare: one message, received a moment ago
    await enqueueEvents(relay, [track(), track()])
    const received = await relay.queues.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: relay.queues.queueUrl, MaxNumberOfMessages: 2 }),
    )
    const receivedAt = Date.now() - 1
    const [a, b] = received.Messages ?? []
    await new Promise((resolve) => setTimeout(resolve, 10))

    // Act: the full 12 h (what the worker asked before) and the capped delay
    const refused = await relay.queues.sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: relay.queues.queueUrl,
        Entries: [
          { Id: 'a', ReceiptHandle: a?.ReceiptHandle, VisibilityTimeout: SQS_MAX_VISIBILITY_SECONDS },
        ],
      }),
    )
    const logger = createLogger('visibility-test')
    const warn = vi.spyOn(logger, 'warn')
    await changeVisibility(
      relay.queues.sqs,
      relay.queues.queueUrl,
      [{ id: 'b', receiptHandle: b?.ReceiptHandle as string, seconds: SQS_MAX_VISIBILITY_SECONDS }],
      logger,
      { receivedAtMs: receivedAt },
    )

    // Assess
    expect(refused.Failed).toEqual([
      expect.objectContaining({ Id: 'a', Code: 'InvalidParameterValue', SenderFault: true }),
    ])
    expect(warn).not.toHaveBeenCalled()
    const visibility = visibilityOf(relay)
    expect(visibility.get(b?.MessageId as string)).toBeGreaterThan(SQS_MAX_VISIBILITY_SECONDS - 10)
    expect(visibility.get(b?.MessageId as string)).toBeLessThan(SQS_MAX_VISIBILITY_SECONDS)
    expect(visibility.get(a?.MessageId as string)).toBeLessThan(120)
  })

  it('caps a delay at what is left of the 12 hours', () => {
    const receivedAt = Date.parse('2026-11-29T00:00:00Z')
    expect(visibilityLeftSeconds(receivedAt, receivedAt + 3_600_000)).toBe(
      SQS_MAX_VISIBILITY_SECONDS - 3_600 - 5,
    )
    expect(visibilityLeftSeconds(receivedAt, receivedAt + 13 * 3_600_000)).toBe(0)
  })

  it('bounds every delay setting so that, jittered, it fits', () => {
    for (const name of [
      'RETRY_MAX_SECONDS',
      'RATE_LIMIT_DELAY_SECONDS',
      'RETRY_AFTER_MAX_SECONDS',
      'AUTH_ERROR_DELAY_SECONDS',
    ]) {
      expect(() => parseConfig({ ...relay.env, RETRY_BASE_SECONDS: '1', [name]: '43200' }), name).toThrow(
        new RegExp(`${name}: must be a whole number from 1 to 35000`),
      )
    }
  })
})

describe('a slow SQS', () => {
  it('cannot make the invocation outlive its deadline: the dead-letter and visibility calls are bounded', async () => {
    // Prepare: an SQS endpoint that never answers; Courier refuses one record for good and fails the other
    const silent = await startHttpStub(hang)
    const timeouts: SqsTimeouts = { maxAttempts: 2, connectionTimeoutMs: 200, requestTimeoutMs: 200 }
    const sqs = createSqsClient(
      { endpoint: silent.url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } },
      timeouts,
    )
    relay.sandbox.setFaults({ serverErrorShare: 1 })
    await enqueueEvents(relay, [track(), '{"type":"track","event":"no messageId"}'])
    const records = await receiveRecords(relay)
    const remainingMs = finishMarginMs(timeouts) + 300

    try {
      // Act
      const started = Date.now()
      const response = await relay.deliver({ sqs, sqsTimeouts: timeouts })(
        { Records: records },
        createLambdaContext('deliver', remainingMs),
      )

      // Assess: answered in time; both records come back (the DLQ did not take the bad one)
      expect(Date.now() - started).toBeLessThan(remainingMs)
      expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
        records.map((r) => r.messageId).sort(),
      )
      expect(silent.requests.length).toBeGreaterThanOrEqual(2)
    } finally {
      sqs.destroy()
      await silent.stop()
    }
  })
})

/**
 * The compressed clock: days of retries in milliseconds. SQS is modelled as the SQS docs describe
 * it (retention, visibility from the receive, maxReceiveCount redrive without a reason), because
 * no emulator can fast-forward 14 days; the worker, the retry policy and the config are the real
 * ones. For any mix of Courier's answers, every event reaches Courier or the DLQ with a reason.
 */
describe('the compressed clock', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  type Answer = { kind: '429'; retryAfter: number | undefined } | { kind: '503' | 'timeout' | '401' }

  const answerArb: fc.Arbitrary<Answer> = fc.oneof(
    fc.record({
      kind: fc.constant('429' as const),
      retryAfter: fc.option(fc.integer({ min: 1, max: DEFAULTS.RETRY_AFTER_MAX_SECONDS * 2 }), {
        nil: undefined,
      }),
    }),
    fc.record({ kind: fc.constantFrom('503' as const, 'timeout' as const, '401' as const) }),
  )
  /** Each event: a cycle of failures Courier repeats, and after how many attempts (if ever) it takes the event. */
  const scenarioArb = fc.array(
    fc.record({
      answers: fc.array(answerArb, { minLength: 1, maxLength: 4 }),
      succeedsAfter: fc.option(fc.integer({ min: 0, max: 2_000 }), { nil: undefined }),
    }),
    { minLength: 1, maxLength: 3 },
  )

  const outcomeOf = (answer: Answer): Outcome => {
    switch (answer.kind) {
      case '429':
        return { kind: 'rate-limited', status: 429, retryAfterSeconds: answer.retryAfter }
      case '503':
        return { kind: 'transient', status: 503, reason: 'Service Unavailable' }
      case 'timeout':
        return { kind: 'transient', status: undefined, reason: 'timeout' }
      case '401':
        return { kind: 'auth', status: 401, reason: 'Unauthorized' }
    }
  }

  interface Message {
    readonly id: string
    readonly body: string
    readonly sentAt: number
    receiveCount: number
    visibleAt: number
    receivedAt: number
  }

  it('for any mix of 429 (Retry-After up to its cap and beyond), 5xx, timeouts and 401, nothing expires unseen', async () => {
    const config = parseConfig({
      QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/1/q',
      DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/1/d',
      COURIER_AUTH_TOKEN: 't',
    })
    const logger = createLogger('compressed-clock')
    vi.spyOn(logger, 'info').mockImplementation(() => undefined)
    vi.spyOn(logger, 'error').mockImplementation(() => undefined)

    await fc.assert(
      fc.asyncProperty(scenarioArb, fc.integer({ min: 0, max: 2 ** 31 }), async (scenario, seed) => {
        vi.useFakeTimers({ toFake: ['Date'] })
        const start = Date.parse('2026-01-01T00:00:00Z')
        let now = start
        vi.setSystemTime(now)
        let state = seed
        const random = () => {
          state = (state * 1_103_515_245 + 12_345) % 2 ** 31
          return state / 2 ** 31
        }

        const events = scenario.map(() => track())
        const attempts = new Map<string, number>()
        const delivered = new Set<string>()
        const deadLettered = new Map<string, { reason: string | undefined; at: number }>()
        const lost: string[] = []
        let refusedChanges = 0
        let queue: Message[] = events.map((event, i) => ({
          id: `m-${i}`,
          body: JSON.stringify(event),
          sentAt: start,
          receiveCount: 0,
          visibleAt: start,
          receivedAt: 0,
        }))

        const courier: CourierClient = {
          send: async (request) => {
            const { messageId } = JSON.parse(request.rawBody ?? JSON.stringify(request.body)) as {
              messageId: string
            }
            const index = events.findIndex((e) => e.messageId === messageId)
            const { answers, succeedsAfter } = scenario[index] as (typeof scenario)[number]
            const n = attempts.get(messageId) ?? 0
            attempts.set(messageId, n + 1)
            if (succeedsAfter !== undefined && n >= succeedsAfter) {
              delivered.add(messageId)
              return {
                status: 202,
                body: undefined,
                outcome: { kind: 'delivered', status: 202 },
                durationMs: 1,
              }
            }
            const outcome = outcomeOf(answers[n % answers.length] as Answer)
            return { status: outcome.status, body: undefined, outcome, durationMs: 1 } as SendResult
          },
        }
        const changes = new Map<string, number>()
        const sqs = {
          send: async (command: unknown) => {
            if (command instanceof SendMessageCommand) {
              const { messageId } = JSON.parse(command.input.MessageBody as string) as { messageId: string }
              deadLettered.set(messageId, {
                reason: command.input.MessageAttributes?.reason?.StringValue,
                at: now,
              })
              return { MessageId: 'dlq' }
            }
            if (command instanceof ChangeMessageVisibilityBatchCommand) {
              for (const entry of command.input.Entries ?? []) {
                const message = queue.find((m) => `${m.id}#${m.receiveCount}` === entry.ReceiptHandle)
                const seconds = entry.VisibilityTimeout ?? 0
                // SQS: at most 12 h from this receive, refused otherwise.
                if (
                  message === undefined ||
                  now + seconds * 1000 > message.receivedAt + SQS_MAX_VISIBILITY_SECONDS * 1000
                ) {
                  refusedChanges++
                  continue
                }
                changes.set(message.id, now + seconds * 1000)
              }
              return { Successful: [], Failed: [] }
            }
            throw new Error(`unexpected SQS call ${String(command)}`)
          },
        } as unknown as SQSClient
        const deps = { config, sqs, courier, logger, instance: createDeliverInstance(() => unpaced), random }

        while (queue.length > 0) {
          now = Math.min(...queue.map((m) => m.visibleAt))
          vi.setSystemTime(now)
          // SQS deletes what outlived the retention, and moves what used up its receives, unseen.
          for (const m of queue.filter((m) => now - m.sentAt >= SQS_MAX_RETENTION_SECONDS * 1000))
            lost.push(`${m.id} expired in the queue`)
          queue = queue.filter((m) => now - m.sentAt < SQS_MAX_RETENTION_SECONDS * 1000)
          const batch = queue.filter((m) => m.visibleAt <= now).slice(0, 10)
          for (const m of batch.filter((m) => m.receiveCount >= QUEUE_SETTINGS.maxReceiveCount))
            lost.push(`${m.id} moved by SQS without a reason`)
          const live = batch.filter((m) => m.receiveCount < QUEUE_SETTINGS.maxReceiveCount)
          queue = queue.filter((m) => !batch.includes(m) || live.includes(m))
          if (live.length === 0) continue
          const records = live.map((m) => {
            m.receiveCount++
            m.receivedAt = now
            m.visibleAt = now + 360_000 // the queue's default visibility, 6 × the deliver timeout
            return toSqsRecord(
              {
                MessageId: m.id,
                ReceiptHandle: `${m.id}#${m.receiveCount}`,
                Body: m.body,
                Attributes: {
                  ApproximateReceiveCount: String(m.receiveCount),
                  SentTimestamp: String(m.sentAt),
                },
              },
              'arn:aws:sqs:us-east-1:1:q',
              'us-east-1',
            )
          })
          changes.clear()
          const response = await deliverBatch(
            deps,
            { Records: records },
            createLambdaContext('deliver', 60_000),
          )
          const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier))
          queue = queue.filter((m) => !live.includes(m) || failed.has(m.id))
          for (const m of live) m.visibleAt = changes.get(m.id) ?? m.visibleAt
        }

        expect(lost).toEqual([])
        expect(refusedChanges).toBe(0)
        for (const event of events) {
          const dead = deadLettered.get(event.messageId)
          expect(delivered.has(event.messageId) !== (dead !== undefined), event.messageId).toBe(true)
          if (dead) {
            expect(dead.reason).toMatch(/^(expired after [\d.]+ days of retries|gave up after 1000 receives)/)
            expect(dead.at - start).toBeLessThan(SQS_MAX_RETENTION_SECONDS * 1000)
          }
        }
        vi.useRealTimers()
      }),
      { numRuns: Number(process.env.CLOCK_RUNS ?? 25) },
    )
  }, 120_000)
})
