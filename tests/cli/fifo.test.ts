import { SendMessageCommand } from '@aws-sdk/client-sqs'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { main as dlqMain, listDeadLetters } from '../../lib/cli/dlq.ts'
import { conventionalQueueUrl, redrive, main as redriveMain } from '../../lib/cli/redrive.ts'
import { deadLetterMessage } from '../../lib/queue/dead-letter.ts'
import { fifoId, messageGroupId } from '../../lib/queue/message-group.ts'
import { fifoFields, toSqsAttributes } from '../../lib/queue/sqs-message.ts'
import { identify, track } from '../support/fixtures.ts'
import { clearQueues, startTestQueues, type TestQueues } from '../support/queues.ts'

/** `npm run dlq` and `npm run redrive` on FIFO queues, as `npm start` and the default deploy have. */

let queues: TestQueues
let port: number
beforeAll(async () => {
  queues = await startTestQueues()
  port = Number(new URL(queues.endpoint).port)
})
afterAll(() => queues.stop())
beforeEach(() => clearQueues(queues))

/** Dead letters as the deliver function writes them to a FIFO DLQ: the user's group, a dedup id per receive. */
const deadLetter = async (events: Record<string, unknown>[], why: { truncated?: boolean } = {}) => {
  for (const [i, event] of events.entries()) {
    const body = JSON.stringify(event)
    const message = deadLetterMessage(
      body,
      { stage: 'deliver', reason: 'Courier: Bad Request', status: 400, messageId: String(event.messageId) },
      why.truncated ? 100 : 262_144,
      {
        group: messageGroupId(event, body),
        deduplicationId: fifoId('dead', `sqs-${i}-${String(event.messageId)}`),
      },
    )
    await queues.sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.dlqUrl,
        MessageBody: message.body,
        MessageAttributes: toSqsAttributes(message.attributes),
        ...fifoFields(message, true),
      }),
    )
  }
}

const queued = () => {
  const state = queues.server.inspectQueue(queues.queueUrl.split('/').pop() as string)
  return state?.messages.ready ?? []
}

describe('redrive of a FIFO DLQ', () => {
  it('brings each user’s events back in order, with their group and a fresh deduplication id', async () => {
    // Prepare: two users' dead letters, interleaved, more than one receive's worth
    const ada = Array.from({ length: 8 }, (_, i) => track({ userId: 'ada', properties: { i } }))
    const bob = Array.from({ length: 7 }, (_, i) => identify({ userId: 'bob', traits: { i } }))
    await deadLetter(ada.flatMap((event, i) => (bob[i] ? [event, bob[i]] : [event])))

    // Act
    const result = await redrive(queues.sqs, {
      dlqUrl: queues.dlqUrl,
      queueUrl: queues.queueUrl,
      mode: 'local',
      waitSeconds: 0,
    })

    // Assess
    expect(result).toMatchObject({ moved: 15, failed: 0, behind: 0 })
    for (const [user, events] of [
      ['ada', ada],
      ['bob', bob],
    ] as const) {
      const back = queued().filter((m) => m.messageGroupId === `user:${user}`)
      expect(back.map((m) => JSON.parse(m.body).messageId)).toEqual(events.map((e) => e.messageId))
      expect(back.every((m) => m.messageDeduplicationId?.startsWith('redrive:'))).toBe(true)
    }
  })

  it('is not dropped by the events queue as a repeat of the event it was minutes ago', async () => {
    // Prepare: the event went through the events queue with its messageId as deduplication id
    const event = identify({ userId: 'ada' })
    await queues.sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.queueUrl,
        MessageBody: JSON.stringify(event),
        MessageGroupId: 'user:ada',
        MessageDeduplicationId: `m:${event.messageId}`,
      }),
    )
    clearQueues(queues)
    await deadLetter([event])

    // Act
    await redrive(queues.sqs, {
      dlqUrl: queues.dlqUrl,
      queueUrl: queues.queueUrl,
      mode: 'local',
      waitSeconds: 0,
    })

    // Assess
    expect(queued().map((m) => m.body)).toEqual([JSON.stringify(event)])
  })

  it('leaves a user’s later events behind one that must stay, so none overtakes it', async () => {
    // Prepare: ada's first dead letter is truncated (cannot be replayed); bob's are fine
    const [first, ...rest] = Array.from({ length: 3 }, (_, i) =>
      track({ userId: 'ada', properties: { i, blob: 'x'.repeat(200) } }),
    )
    await deadLetter([first as Record<string, unknown>], { truncated: true })
    await deadLetter([...rest, identify({ userId: 'bob' })])

    // Act
    const result = await redrive(queues.sqs, {
      dlqUrl: queues.dlqUrl,
      queueUrl: queues.queueUrl,
      mode: 'local',
      waitSeconds: 0,
      hideSeconds: 1,
    })

    // Assess
    expect(result).toMatchObject({ moved: 1, truncated: 1 })
    expect(queued().map((m) => m.messageGroupId)).toEqual(['user:bob'])
  })

  it('finds the FIFO events queue from the FIFO DLQ name', () => {
    expect(
      conventionalQueueUrl('https://sqs.us-east-1.amazonaws.com/1/segment-courier-relay-prod-dlq.fifo'),
    ).toBe('https://sqs.us-east-1.amazonaws.com/1/segment-courier-relay-prod-events.fifo')
    expect(conventionalQueueUrl(queues.dlqUrl)).toBe(queues.queueUrl)
  })

  it('npm run redrive -- --local works on npm start’s FIFO queues', async () => {
    await deadLetter([identify({ userId: 'ada' })])
    const out: string[] = []

    const code = await redriveMain(['--local'], {
      env: { SQS_PORT: String(port) },
      out: (line) => out.push(line),
      err: () => undefined,
    })

    expect(code).toBe(0)
    expect(out[0]).toMatch(/^moved 1 event\(s\) from the DLQ back to .*events\.fifo$/)
  })
})

describe('npm run dlq on a FIFO DLQ', () => {
  it('lists dead letters of many users with their reasons and leaves them in place', async () => {
    const events = Array.from({ length: 12 }, (_, i) => identify({ userId: `user-${i}` }))
    await deadLetter(events)
    const out: string[] = []

    const letters = await listDeadLetters(queues.sqs, queues.dlqUrl, { waitSeconds: 0 })
    const code = await dlqMain(['--local'], {
      env: { SQS_PORT: String(port) },
      out: (line) => out.push(line),
      err: (line) => out.push(line),
    })

    expect(letters.map((l) => l.messageId).sort()).toEqual(events.map((e) => e.messageId).sort())
    expect(letters.every((l) => l.reason === 'Courier: Bad Request')).toBe(true)
    expect(code).toBe(0)
    expect(out.join('\n')).toContain('12')
    const dlq = queues.server.inspectQueue(queues.dlqUrl.split('/').pop() as string)
    expect(dlq?.messages.ready).toHaveLength(12)
  })

  it('says why it lists fewer than there are when one user has more than one receive holds', async () => {
    await deadLetter(Array.from({ length: 12 }, (_, i) => track({ userId: 'busy', properties: { i } })))
    const out: string[] = []

    const code = await dlqMain(['--local'], {
      env: { SQS_PORT: String(port) },
      out: (line) => out.push(line),
      err: (line) => out.push(line),
    })

    expect(code).toBe(0)
    expect(out.at(-1)).toMatch(
      /^10 dead-lettered event\(s\) listed .*about 12 in the DLQ; a FIFO queue shows the oldest of each user/,
    )
    const dlq = queues.server.inspectQueue(queues.dlqUrl.split('/').pop() as string)
    expect(dlq?.messages.ready).toHaveLength(12)
  })
})
