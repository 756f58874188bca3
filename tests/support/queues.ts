import { type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs'
import { type LocalQueues, startLocalQueues } from '../../lib/local/queues.ts'
import { createSqsClient } from '../../lib/queue/sqs-client.ts'

/** A fresh embedded SQS (fauxqs) per test file, and ways to look inside its queues. */

export interface TestQueues extends LocalQueues {
  readonly sqs: SQSClient
}

export const startTestQueues = async (
  options: Parameters<typeof startLocalQueues>[0] = {},
): Promise<TestQueues> => {
  const queues = await startLocalQueues(options)
  const sqs = createSqsClient({ endpoint: queues.endpoint, region: 'us-east-1' })
  return {
    ...queues,
    sqs,
    stop: async () => {
      sqs.destroy()
      await queues.stop()
    },
  }
}

const queueName = (url: string) => url.split('/').pop() as string

/** Every message on a queue (ready, delayed and in flight), without touching visibility. */
export const peek = (queues: LocalQueues, url: string) => {
  const state = queues.server.inspectQueue(queueName(url))
  if (state === undefined) throw new Error(`no queue ${url}`)
  const { ready, delayed, inflight } = state.messages
  return [...ready, ...delayed, ...inflight.map((entry) => entry.message)]
}

export const bodies = (queues: LocalQueues, url: string): string[] =>
  peek(queues, url).map((message) => message.body)

/** Receives (and so hides) up to `max` messages, with their attributes. */
export const receiveAll = async (sqs: SQSClient, url: string, max = 10_000): Promise<Message[]> => {
  const messages: Message[] = []
  while (messages.length < max) {
    const result = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 10,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
        VisibilityTimeout: 300,
      }),
    )
    if (!result.Messages?.length) break
    messages.push(...result.Messages)
  }
  return messages
}

export const clearQueues = (queues: LocalQueues) => {
  queues.server.reset()
}
