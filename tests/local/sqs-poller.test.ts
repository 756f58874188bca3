import { ChangeMessageVisibilityCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs'
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { QueueType } from '../../lib/local/queues.ts'
import { type Poller, recordsToDelete, startPoller } from '../../lib/local/sqs-poller.ts'
import { peek, startTestQueues, type TestQueues } from '../support/queues.ts'

let queues: TestQueues
let poller: Poller | undefined

const until = async (condition: () => boolean, timeoutMs = 10_000) => {
  const started = Date.now()
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** Sends bodies in order; on a FIFO queue each is its own group unless `group` names one. */
const sendTo = (group: ((body: string) => string) | undefined, bodies: string[]) =>
  queues.sqs.send(
    new SendMessageBatchCommand({
      QueueUrl: queues.queueUrl,
      Entries: bodies.map((body, i) => ({
        Id: String(i),
        MessageBody: body,
        MessageAttributes: { type: { DataType: 'String', StringValue: 'track' } },
        ...(queues.queueUrl.endsWith('.fifo')
          ? {
              MessageGroupId: group?.(body) ?? `g-${body.replace(/\W/g, '')}`,
              MessageDeduplicationId: `${body.replace(/\W/g, '')}-${i}-${Date.now()}`,
            }
          : {}),
      })),
    }),
  )
const send = (...bodies: string[]) => sendTo(undefined, bodies)

const poll = (handler: (event: SQSEvent) => Promise<SQSBatchResponse | undefined>) => {
  poller = startPoller({
    sqs: queues.sqs,
    queueUrl: queues.queueUrl,
    queueArn: queues.queueArn,
    handler,
    waitTimeSeconds: 1,
    onError: () => undefined,
  })
  return poller
}

let queueType: QueueType = 'standard'
beforeEach(async () => {
  queues = await startTestQueues({ visibilityTimeoutSeconds: 1, queueType })
})
afterEach(async () => {
  await poller?.stop()
  poller = undefined
  await queues.stop()
})

describe.each(['standard', 'fifo'] as const)('local SQS event source (%s queue)', (type) => {
  beforeAll(() => {
    queueType = type
  })

  it('hands over Lambda-shaped records', async () => {
    // Prepare
    const seen: SQSRecord[] = []
    await send('{"a":1}')

    // Act
    poll(async (event) => {
      seen.push(...event.Records)
      return { batchItemFailures: [] }
    })
    await until(() => seen.length === 1)

    // Assess
    const [record] = seen as [SQSRecord]
    expect(record).toMatchObject({
      body: '{"a":1}',
      eventSource: 'aws:sqs',
      eventSourceARN: queues.queueArn,
      awsRegion: 'us-east-1',
      attributes: { ApproximateReceiveCount: '1' },
      messageAttributes: { type: { dataType: 'String', stringValue: 'track' } },
    })
    expect(record.messageId).toEqual(expect.any(String))
    expect(record.receiptHandle).toEqual(expect.any(String))
    expect(record.md5OfBody).toMatch(/^[0-9a-f]{32}$/)
  })

  it('deletes what succeeded and redelivers only the records reported in batchItemFailures', async () => {
    // Prepare
    const receives: Record<string, number[]> = {}
    await send('"ok-1"', '"fail-once"', '"ok-2"')

    // Act
    const running = poll(async (event) => {
      const failures = []
      for (const record of event.Records) {
        const count = Number(record.attributes.ApproximateReceiveCount)
        receives[record.body] = [...(receives[record.body] ?? []), count]
        if (record.body === '"fail-once"' && count === 1) failures.push({ itemIdentifier: record.messageId })
      }
      return { batchItemFailures: failures }
    })
    await until(
      // The poller counts a deletion once SQS has answered it, a moment after the queue is empty.
      () =>
        (receives['"fail-once"']?.length ?? 0) === 2 &&
        peek(queues, queues.queueUrl).length === 0 &&
        running.stats.deleted === 3,
    )

    // Assess
    expect(receives).toEqual({ '"ok-1"': [1], '"fail-once"': [1, 2], '"ok-2"': [1] })
    expect(running.stats.reportedFailures).toBe(1)
    expect(running.stats.deleted).toBe(3)
  })

  it('redelivers the whole batch when the function throws', async () => {
    const receives: string[] = []
    await send('"a"', '"b"')
    let thrown = false

    const running = poll(async (event) => {
      receives.push(...event.Records.map((r) => r.body))
      if (!thrown) {
        thrown = true
        throw new Error('boom')
      }
      return undefined
    })
    await until(() => running.stats.deleted === 2)

    expect(running.stats.failedBatches).toBe(1)
    expect(receives.filter((b) => b === '"a"')).toHaveLength(2)
    expect(receives.filter((b) => b === '"b"')).toHaveLength(2)
  })

  it('treats an unknown or empty itemIdentifier as a failed batch, as Lambda does', () => {
    const records = [{ messageId: 'm1' }, { messageId: 'm2' }] as SQSRecord[]
    expect(recordsToDelete(records, { batchItemFailures: [{ itemIdentifier: 'nope' }] })).toEqual([])
    expect(recordsToDelete(records, { batchItemFailures: [{ itemIdentifier: '' }] })).toEqual([])
    expect(recordsToDelete(records, { batchItemFailures: [{ itemIdentifier: 'm2' }] })).toEqual([records[0]])
    expect(recordsToDelete(records, undefined)).toEqual(records)
  })
})

describe('local FIFO event source', () => {
  beforeAll(() => {
    queueType = 'fifo'
  })

  it('hands over up to 10 records of one group per batch, in order, with the FIFO attributes', async () => {
    // Prepare
    const batches: SQSRecord[][] = []
    await sendTo(
      () => 'user:a',
      Array.from({ length: 10 }, (_, i) => `"a${i}"`),
    )
    await sendTo(() => 'user:a', ['"a10"', '"a11"'])

    // Act
    poll(async (event) => {
      batches.push(event.Records)
      return { batchItemFailures: [] }
    })
    await until(() => batches.flat().length === 12)

    // Assess
    expect(batches[0]?.map((r) => r.body)).toEqual(Array.from({ length: 10 }, (_, i) => `"a${i}"`))
    expect(batches.flat().map((r) => r.body)).toEqual([...Array.from({ length: 12 }, (_, i) => `"a${i}"`)])
    const [first] = batches[0] as [SQSRecord]
    expect(first.attributes).toMatchObject({ MessageGroupId: 'user:a', SequenceNumber: expect.any(String) })
    expect(first.attributes.MessageDeduplicationId).toEqual(expect.any(String))
  })

  it('never hands a group to a second poller while one of its records is in flight', async () => {
    // Prepare: three users, six events each, and three concurrent pollers
    for (const user of ['a', 'b', 'c'])
      await sendTo(
        () => `user:${user}`,
        [0, 1, 2, 3, 4, 5].map((i) => `"${user}${i}"`),
      )
    const inFlight = new Map<string, number>()
    let overlaps = 0
    const order: string[] = []

    // Act: each batch takes a while, so pollers would overlap if SQS let them
    poller = startPoller({
      sqs: queues.sqs,
      queueUrl: queues.queueUrl,
      queueArn: queues.queueArn,
      handler: async (event) => {
        const groups = new Set(event.Records.map((r) => r.attributes.MessageGroupId as string))
        for (const g of groups) {
          if (inFlight.get(g)) overlaps++
          inFlight.set(g, (inFlight.get(g) ?? 0) + 1)
        }
        await new Promise((resolve) => setTimeout(resolve, 50))
        order.push(...event.Records.map((r) => r.body))
        for (const g of groups) inFlight.set(g, (inFlight.get(g) ?? 1) - 1)
        return { batchItemFailures: [] }
      },
      batchSize: 2,
      maxConcurrency: 3,
      waitTimeSeconds: 1,
      onError: () => undefined,
    })
    await until(() => order.length === 18)

    // Assess
    expect(overlaps).toBe(0)
    for (const user of ['a', 'b', 'c']) {
      expect(order.filter((b) => b.startsWith(`"${user}`))).toEqual(
        [0, 1, 2, 3, 4, 5].map((i) => `"${user}${i}"`),
      )
    }
  })

  it('keeps a group blocked while a failed record is delayed, then delivers it first', async () => {
    // Prepare
    await sendTo(() => 'user:a', ['"a0"', '"a1"', '"a2"'])
    await sendTo(() => 'user:b', ['"b0"'])
    const delivered: { body: string; at: number }[] = []
    let failedOnce = false
    const started = Date.now()

    // Act: a0 fails once and is delayed 1.5 s; the later records of its group go back too (the FIFO rule)
    poll(async (event) => {
      const failures: { itemIdentifier: string }[] = []
      for (const record of event.Records) {
        const failing = failures.length > 0 && record.attributes.MessageGroupId === 'user:a'
        if (record.body === '"a0"' && !failedOnce) {
          failedOnce = true
          await queues.sqs.send(
            new ChangeMessageVisibilityCommand({
              QueueUrl: queues.queueUrl,
              ReceiptHandle: record.receiptHandle,
              VisibilityTimeout: 2,
            }),
          )
          failures.push({ itemIdentifier: record.messageId })
        } else if (failing) {
          failures.push({ itemIdentifier: record.messageId })
        } else {
          delivered.push({ body: record.body, at: Date.now() - started })
        }
      }
      return { batchItemFailures: failures }
    })
    await until(() => delivered.length === 4)

    // Assess: b0 went on at once; a1 and a2 (visible again after 1 s) waited for a0 (2 s)
    expect(delivered.map((d) => d.body)).toEqual(['"b0"', '"a0"', '"a1"', '"a2"'])
    expect(delivered[1]?.at).toBeGreaterThanOrEqual(1_900)
  })

  it('takes batches of at most 10, as a FIFO event source does', () => {
    expect(() =>
      startPoller({
        sqs: queues.sqs,
        queueUrl: queues.queueUrl,
        queueArn: queues.queueArn,
        handler: async () => undefined,
        batchSize: 11,
      }),
    ).toThrow(/1 to 10/)
  })
})
