import {
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { FIFO_ATTRIBUTES } from '../../lib/queue/settings.ts'
import { clearQueues, startTestQueues, type TestQueues } from '../support/queues.ts'

/**
 * The embedded FIFO queues behave as SQS's do, refusals included: what the relay relies on
 * (group order, blocking, deduplication) and what SQS refuses (missing or malformed ids).
 */

let queues: TestQueues
beforeAll(async () => {
  queues = await startTestQueues({ visibilityTimeoutSeconds: 1 })
})
afterAll(() => queues.stop())
beforeEach(() => clearQueues(queues))

const send = (body: string, group: string | undefined, dedup: string | undefined = body) =>
  queues.sqs.send(
    new SendMessageCommand({
      QueueUrl: queues.queueUrl,
      MessageBody: body,
      ...(group === undefined ? {} : { MessageGroupId: group }),
      ...(dedup === undefined ? {} : { MessageDeduplicationId: dedup }),
    }),
  )
const receive = async (visibility = 30) =>
  (
    await queues.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queues.queueUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: visibility,
        MessageSystemAttributeNames: ['All'],
      }),
    )
  ).Messages ?? []

describe('the embedded FIFO queues', () => {
  it('are FIFO in high-throughput mode, with a FIFO DLQ, as deployed', async () => {
    const attributes = async (url: string) =>
      (await queues.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] })))
        .Attributes ?? {}

    const [queue, dlq] = await Promise.all([attributes(queues.queueUrl), attributes(queues.dlqUrl)])

    expect(queues.queueUrl).toMatch(/-events\.fifo$/)
    expect(queues.dlqUrl).toMatch(/-events-dlq\.fifo$/)
    for (const props of [queue, dlq]) expect(props).toMatchObject(FIFO_ATTRIBUTES)
    expect(JSON.parse(queue.RedrivePolicy ?? '{}').deadLetterTargetArn).toBe(queues.dlqArn)
  })

  it('refuses what SQS refuses: no group id, a group or deduplication id outside 1-128 printable ASCII', async () => {
    const refusal = (promise: Promise<unknown>) =>
      promise.then(
        () => 'accepted',
        (error: Error) => error.name,
      )

    const answers = await Promise.all([
      refusal(send('{"a":1}', undefined)),
      refusal(send('{"a":2}', undefined, undefined)),
      refusal(send('{"a":3}', 'user:has space')),
      refusal(send('{"a":4}', 'ü')),
      refusal(send('{"a":5}', 'x'.repeat(129))),
      refusal(send('{"a":6}', 'user:ok', 'd'.repeat(129))),
      refusal(send('{"a":7}', 'x'.repeat(128), '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~')),
    ])

    expect(answers.slice(0, 6).every((answer) => answer !== 'accepted')).toBe(true)
    expect(answers[6]).toBe('accepted')
  })

  it('drops a repeat of a deduplication id within the window', async () => {
    await send('{"n":1}', 'user:a', 'm:1')
    await send('{"n":1}', 'user:a', 'm:1')
    await send('{"n":2}', 'user:a', 'm:2')

    const bodies = (await receive()).map((m) => m.Body)

    expect(bodies).toEqual(['{"n":1}', '{"n":2}'])
  })

  it('hands out several of one group per receive, blocks the group while any is in flight, and gives them back in order', async () => {
    // Prepare
    await queues.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queues.queueUrl,
        Entries: ['a0', 'a1', 'a2', 'b0'].map((body, i) => ({
          Id: String(i),
          MessageBody: body,
          MessageGroupId: `user:${body[0]}`,
          MessageDeduplicationId: body,
        })),
      }),
    )
    await send('a3', 'user:a')

    // Act
    const first = await receive(1)
    const whileInFlight = await receive(1)
    await new Promise((resolve) => setTimeout(resolve, 1_300))
    const again = await receive()

    // Assess
    expect(first.map((m) => m.Body)).toEqual(['a0', 'a1', 'a2', 'a3', 'b0'])
    expect(whileInFlight).toEqual([])
    expect(again.map((m) => m.Body)).toEqual(['a0', 'a1', 'a2', 'a3', 'b0'])
    expect(again.map((m) => m.Attributes?.ApproximateReceiveCount)).toEqual(['2', '2', '2', '2', '2'])
  })
})

describe('the embedded standard queues', () => {
  it('stay available with queueType standard', async () => {
    const standard = await startTestQueues({ queueType: 'standard' })
    try {
      await standard.sqs.send(new SendMessageCommand({ QueueUrl: standard.queueUrl, MessageBody: '{}' }))
      const attributes = await standard.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: standard.queueUrl, AttributeNames: ['All'] }),
      )
      expect(standard.queueUrl).not.toMatch(/\.fifo$/)
      expect(attributes.Attributes?.FifoQueue).toBeUndefined()
    } finally {
      await standard.stop()
    }
  })
})
