import { SendMessageBatchCommand } from '@aws-sdk/client-sqs'
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
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

const send = (...bodies: string[]) =>
  queues.sqs.send(
    new SendMessageBatchCommand({
      QueueUrl: queues.queueUrl,
      Entries: bodies.map((body, i) => ({
        Id: String(i),
        MessageBody: body,
        MessageAttributes: { type: { DataType: 'String', StringValue: 'track' } },
      })),
    }),
  )

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

beforeEach(async () => {
  queues = await startTestQueues({ visibilityTimeoutSeconds: 1 })
})
afterEach(async () => {
  await poller?.stop()
  poller = undefined
  await queues.stop()
})

describe('local SQS event source', () => {
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
