import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  conventionalQueueUrl,
  describeRedrive,
  isUnsupportedOperation,
  main,
  moveMessages,
  type RedriveResult,
  redrive,
  redriveAttributes,
  startMoveTask,
} from '../../lib/cli/redrive.ts'
import { type DeadLetterReason, deadLetterMessage } from '../../lib/queue/dead-letter.ts'
import { createSqsClient } from '../../lib/queue/sqs-client.ts'
import { toSqsAttributes } from '../../lib/queue/sqs-message.ts'
import { identify, track } from '../support/fixtures.ts'
import { clearQueues, peek, receiveAll, startTestQueues, type TestQueues } from '../support/queues.ts'
import { type SqsWithMoveTasks, startSqsWithMoveTasks } from '../support/sqs-move-tasks.ts'

let queues: TestQueues
let port: number

beforeAll(async () => {
  // Standard queues here; the FIFO behaviour has its own tests below.
  queues = await startTestQueues({ queueType: 'standard' })
  port = Number(new URL(queues.endpoint).port)
})
afterAll(() => queues.stop())
beforeEach(() => clearQueues(queues))

/** Puts dead letters on the DLQ exactly as ingest and deliver write them; returns their bodies. */
const deadLetter = async (items: { body: string; why?: Partial<DeadLetterReason>; maxBytes?: number }[]) => {
  for (let i = 0; i < items.length; i += 10) {
    const entries = items.slice(i, i + 10).map(({ body, why, maxBytes }, index) => {
      const parsed = (() => {
        try {
          return JSON.parse(body) as { type?: string; messageId?: string }
        } catch {
          return {}
        }
      })()
      const message = deadLetterMessage(
        body,
        { stage: 'deliver', reason: 'Courier: Not Found', status: 404, ...parsed, ...why },
        maxBytes ?? 262_144,
      )
      return {
        Id: String(index),
        MessageBody: message.body,
        MessageAttributes: toSqsAttributes(message.attributes),
      }
    })
    await queues.sqs.send(new SendMessageBatchCommand({ QueueUrl: queues.dlqUrl, Entries: entries }))
  }
  return items.map((item) => item.body)
}

const queueState = (name: string) => {
  const state = queues.server.inspectQueue(name)
  if (!state) throw new Error(`no queue ${name}`)
  return { visible: state.messages.ready.length, hidden: state.messages.inflight.length }
}
const dlq = () => ({
  ...queueState('segment-courier-relay-events-dlq'),
  bodies: peek(queues, queues.dlqUrl).map((m) => m.body),
})
const stringAttributes = (message: Message) =>
  Object.fromEntries(Object.entries(message.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue]))

type Command = { constructor: { name: string }; input: Record<string, unknown> }

/** A real client that also does something after each call (what another part of the relay would do meanwhile). */
const rewriting = (
  after: (name: string, input: Record<string, unknown>, answer: unknown) => Promise<unknown>,
) =>
  ({
    send: async (command: Command) => {
      const answer = await queues.sqs.send(command as never)
      return after(command.constructor.name, command.input, answer)
    },
  }) as unknown as SQSClient

const local = { waitSeconds: 0 } as const

describe('redrive against the emulator (no StartMessageMoveTask)', () => {
  it('moves every event back byte-for-byte with all its attributes, and empties the DLQ', async () => {
    // Prepare: formatting JSON.stringify would not reproduce, escapes, emoji, and more than one batch
    const tricky = `{ "type": "identify",\n  "messageId": "m-\\u00e9", "userId": "u-1", "traits": { "name": "Zoë 🦄 'q' \\"dq\\"" } }`
    const bodies = await deadLetter([
      { body: tricky },
      ...Array.from({ length: 11 }, (_, i) => ({ body: JSON.stringify(i % 2 ? identify() : track()) })),
    ])

    // Act
    const result = await redrive(queues.sqs, {
      dlqUrl: queues.dlqUrl,
      queueUrl: queues.queueUrl,
      mode: 'local',
      ...local,
    })

    // Assess
    expect(result).toMatchObject({
      mode: 'local',
      moved: 12,
      failed: 0,
      truncated: 0,
      repeated: 0,
      notDeleted: 0,
    })
    const moved = await receiveAll(queues.sqs, queues.queueUrl)
    expect(moved.map((m) => m.Body).sort()).toEqual([...bodies].sort())
    for (const message of moved) {
      const event = JSON.parse(message.Body ?? '') as { type: string; messageId: string }
      // Every attribute, as SQS's move task keeps them: a new failure adds to this history.
      expect(stringAttributes(message)).toEqual({
        type: event.type,
        messageId: event.messageId,
        stage: 'deliver',
        reason: 'Courier: Not Found',
        status: '404',
        deadLetteredAt: expect.any(String),
      })
    }
    expect(dlq()).toEqual({ visible: 0, hidden: 0, bodies: [] })
  })

  it('in auto mode tries StartMessageMoveTask, says it is unsupported, and moves them itself', async () => {
    // Prepare
    await deadLetter([{ body: JSON.stringify(identify()) }])
    const log: string[] = []

    // Act
    const result = await redrive(queues.sqs, {
      dlqUrl: queues.dlqUrl,
      queueUrl: queues.queueUrl,
      mode: 'auto',
      log: (line) => log.push(line),
      ...local,
    })

    // Assess
    expect(result).toMatchObject({ mode: 'local', moved: 1, fellBack: true })
    expect(log).toEqual([expect.stringContaining('no StartMessageMoveTask (InvalidAction)')])
    expect(dlq().bodies).toEqual([])
  })

  it('finds the events queue from the DLQ name when none is given', async () => {
    await deadLetter([{ body: JSON.stringify(track()) }])

    const result = await redrive(queues.sqs, { dlqUrl: queues.dlqUrl, mode: 'local', ...local })

    expect(result).toMatchObject({ mode: 'local', moved: 1, queueUrl: queues.queueUrl })
  })

  it('leaves in the DLQ, visible, an entry the events queue refused, and moves the rest', async () => {
    // Prepare: SQS refuses the first entry of every SendMessageBatch (and so does not store it)
    const bodies = await deadLetter([{ body: JSON.stringify(identify()) }, { body: JSON.stringify(track()) }])
    const refused: string[] = []
    const refusingFirst = {
      send: async (command: Command) => {
        if (command.constructor.name !== 'SendMessageBatchCommand') return queues.sqs.send(command as never)
        const [first, ...rest] = command.input.Entries as { Id: string; MessageBody: string }[]
        refused.push(first!.MessageBody)
        const { Successful = [] } = rest.length
          ? await queues.sqs.send(
              new SendMessageBatchCommand({ QueueUrl: queues.queueUrl, Entries: rest as never }),
            )
          : {}
        return { Successful, Failed: [{ Id: first!.Id, SenderFault: false, Code: 'InternalError' }] }
      },
    } as unknown as SQSClient

    // Act
    const result = await redrive(refusingFirst, {
      dlqUrl: queues.dlqUrl,
      queueUrl: queues.queueUrl,
      mode: 'local',
      ...local,
    })

    // Assess: nothing lost, nothing doubled
    expect(result).toMatchObject({ moved: 1, failed: 1 })
    expect(dlq()).toEqual({ visible: 1, hidden: 0, bodies: refused })
    expect(peek(queues, queues.queueUrl).map((m) => m.body)).toEqual(
      bodies.filter((b) => !refused.includes(b)),
    )
  })

  it('keeps everything when the events queue cannot be reached, and says why', async () => {
    // Prepare
    await deadLetter([{ body: JSON.stringify(identify()) }, { body: JSON.stringify(identify()) }])

    // Act
    const result = await redrive(queues.sqs, {
      dlqUrl: queues.dlqUrl,
      queueUrl: queues.queueUrl.replace('-events', '-missing'),
      mode: 'local',
      ...local,
    })

    // Assess
    expect(result).toMatchObject({ moved: 0, failed: 2, error: expect.stringMatching(/queue/i) })
    expect(dlq()).toMatchObject({ visible: 2, hidden: 0 })
  })

  it('leaves truncated dead letters, whose body is only the head of the event', async () => {
    // Prepare
    await deadLetter([
      {
        body: JSON.stringify(identify({ traits: { blob: 'x'.repeat(5_000) } })),
        why: { stage: 'ingest', reason: 'event too large' },
        maxBytes: 2_000,
      },
      { body: JSON.stringify(track()) },
    ])

    // Act
    const result = await redrive(queues.sqs, {
      dlqUrl: queues.dlqUrl,
      queueUrl: queues.queueUrl,
      mode: 'local',
      ...local,
    })

    // Assess
    expect(result).toMatchObject({ moved: 1, truncated: 1 })
    expect(dlq()).toMatchObject({ visible: 1, hidden: 0, bodies: [expect.stringMatching(/…\[truncated\]$/)] })
  })

  it('ends when events fail again at once, instead of moving them round forever', async () => {
    // Prepare: a still-broken Courier: whatever reaches the events queue is dead-lettered again at once
    await deadLetter([{ body: JSON.stringify(identify()) }, { body: JSON.stringify(track()) }])
    const broken = rewriting(async (name, input, answer) => {
      if (name === 'SendMessageBatchCommand' && input.QueueUrl === queues.queueUrl) {
        await deadLetter(
          (input.Entries as { MessageBody: string }[]).map((entry) => ({ body: entry.MessageBody })),
        )
      }
      return answer
    })

    // Act
    const result = await redrive(broken, {
      dlqUrl: queues.dlqUrl,
      queueUrl: queues.queueUrl,
      mode: 'local',
      ...local,
    })

    // Assess
    expect(result).toMatchObject({ moved: 2, repeated: 2 })
    expect(dlq()).toMatchObject({ visible: 2, hidden: 0 })
    expect(peek(queues, queues.queueUrl)).toHaveLength(2)
  })

  it('keeps the first version’s moveMessages shape', async () => {
    await deadLetter([{ body: JSON.stringify(identify()) }])

    expect(await moveMessages(queues.sqs, queues.dlqUrl, queues.queueUrl)).toEqual({ moved: 1, failed: 0 })
  })
})

describe('redrive on AWS (StartMessageMoveTask)', () => {
  const DLQ = 'https://sqs.eu-west-1.amazonaws.com/123456789012/segment-courier-relay-prod-dlq'
  const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/segment-courier-relay-prod-events'
  const arnOf = (url: string) => `arn:aws:sqs:eu-west-1:123456789012:${url.split('/').pop()}`

  /** The one stand-in for SQS: fauxqs has no move tasks. Records every command. */
  const fakeAws = (answers: Record<string, (input: Record<string, unknown>) => unknown> = {}) => {
    const sent: { name: string; input: Record<string, unknown> }[] = []
    const sqs = {
      send: async (command: Command) => {
        const name = command.constructor.name
        sent.push({ name, input: command.input })
        const answer = answers[name]
        if (answer) return answer(command.input)
        if (name === 'GetQueueAttributesCommand')
          return { Attributes: { QueueArn: arnOf(String(command.input.QueueUrl)) } }
        if (name === 'StartMessageMoveTaskCommand') return { TaskHandle: 'task-handle-1' }
        throw Object.assign(new Error(`unexpected ${name}`), { name: 'Unexpected' })
      },
    } as unknown as SQSClient
    return { sqs, sent }
  }

  it('starts a move task from the DLQ ARN to the events queue ARN', async () => {
    // Prepare
    const aws = fakeAws()

    // Act
    const result = await redrive(aws.sqs, { dlqUrl: DLQ, queueUrl: QUEUE, mode: 'auto' })

    // Assess
    expect(result).toEqual({
      mode: 'aws',
      taskHandle: 'task-handle-1',
      sourceArn: arnOf(DLQ),
      destinationArn: arnOf(QUEUE),
    })
    expect(aws.sent.at(-1)).toEqual({
      name: 'StartMessageMoveTaskCommand',
      input: { SourceArn: arnOf(DLQ), DestinationArn: arnOf(QUEUE) },
    })
    expect(aws.sent.map((c) => c.name)).not.toContain('ReceiveMessageCommand')
  })

  it('without --queue-url sends them to the queue whose RedrivePolicy names the DLQ', async () => {
    const aws = fakeAws({ ListDeadLetterSourceQueuesCommand: () => ({ queueUrls: [QUEUE] }) })

    const result = await redrive(aws.sqs, { dlqUrl: DLQ, mode: 'aws' })

    expect(result).toMatchObject({ sourceArn: arnOf(DLQ), destinationArn: arnOf(QUEUE) })
  })

  it('with the audience queue also redriving to the DLQ, sends them to the events queue', async () => {
    const audiences = QUEUE.replace(/-events$/, '-audiences')
    const aws = fakeAws({ ListDeadLetterSourceQueuesCommand: () => ({ queueUrls: [audiences, QUEUE] }) })

    const result = await redrive(aws.sqs, { dlqUrl: DLQ, mode: 'aws' })

    expect(audiences).not.toBe(QUEUE)
    expect(result).toMatchObject({ sourceArn: arnOf(DLQ), destinationArn: arnOf(QUEUE) })
  })

  it("always names the destination: by this project's naming when SQS cannot say which queue the DLQ serves", async () => {
    const aws = fakeAws({
      ListDeadLetterSourceQueuesCommand: () => {
        throw Object.assign(new Error('not authorized'), { name: 'AccessDenied' })
      },
    })

    const handle = await startMoveTask(aws.sqs, DLQ)

    expect(handle).toBe('task-handle-1')
    // Without DestinationArn SQS would use each message's "original source queue", which the
    // functions' own dead letters do not have.
    expect(aws.sent.at(-1)).toEqual({
      name: 'StartMessageMoveTaskCommand',
      input: { SourceArn: arnOf(DLQ), DestinationArn: arnOf(QUEUE) },
    })
  })

  it('refuses, starting no task, when it cannot tell where the events go back to', async () => {
    const aws = fakeAws({ ListDeadLetterSourceQueuesCommand: () => ({ queueUrls: [] }) })
    const other = 'https://sqs.eu-west-1.amazonaws.com/123456789012/parking-lot'

    await expect(redrive(aws.sqs, { dlqUrl: other, mode: 'aws' })).rejects.toThrow(/give --queue-url/)
    expect(aws.sent.map((c) => c.name)).not.toContain('StartMessageMoveTaskCommand')
  })

  it('does not fall back on an error that is not "unsupported" (nothing is moved by hand)', async () => {
    const aws = fakeAws({
      StartMessageMoveTaskCommand: () => {
        throw Object.assign(new Error('There is already a task running'), { name: 'UnsupportedOperationX' })
      },
    })

    await expect(redrive(aws.sqs, { dlqUrl: DLQ, queueUrl: QUEUE, mode: 'auto' })).rejects.toThrow(
      'already a task',
    )
    expect(aws.sent.map((c) => c.name)).not.toContain('ReceiveMessageCommand')
  })

  it('prints the task handle and how to watch and cancel it', () => {
    const result: RedriveResult = {
      mode: 'aws',
      taskHandle: 'h-1',
      sourceArn: arnOf(DLQ),
      destinationArn: arnOf(QUEUE),
    }

    const lines = describeRedrive(result, 'eu-west-1').join('\n')

    expect(lines).toContain('started SQS message move task h-1')
    expect(lines).toContain(`aws sqs list-message-move-tasks --source-arn ${arnOf(DLQ)} --region eu-west-1`)
    expect(lines).toContain("aws sqs cancel-message-move-task --task-handle 'h-1' --region eu-west-1")
  })
})

describe('redrive on AWS, against SQS that enforces the move task rules', () => {
  let aws: SqsWithMoveTasks
  let client: SQSClient
  /** A FIFO pair of this project's naming, and a standard queue no one dead-letters into. */
  const fifo = { queueUrl: '', dlqUrl: '' }
  let parkingLot = ''
  const arnOf = async (url: string) =>
    (await queues.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })))
      .Attributes?.QueueArn as string

  beforeAll(async () => {
    const create = async (name: string, attributes: Record<string, string> = {}) =>
      (await queues.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes })))
        .QueueUrl as string
    fifo.dlqUrl = await create('shop-dlq.fifo', { FifoQueue: 'true' })
    fifo.queueUrl = await create('shop-events.fifo', {
      FifoQueue: 'true',
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: await arnOf(fifo.dlqUrl), maxReceiveCount: 1000 }),
    })
    parkingLot = await create('parking-lot')
    aws = await startSqsWithMoveTasks(queues.endpoint, queues.sqs)
    client = createSqsClient({ endpoint: aws.url, region: 'us-east-1' })
  })
  afterAll(async () => {
    client.destroy()
    await aws.stop()
  })
  beforeEach(() => {
    aws.completeAll()
    aws.starts.length = 0
  })

  it('starts one task from the DLQ to the events queue, always naming the destination ARN, and moves nothing itself', async () => {
    // Prepare
    await deadLetter([{ body: JSON.stringify(identify()) }])

    // Act: auto, as npm run redrive runs against AWS
    const result = await redrive(client, { dlqUrl: queues.dlqUrl, mode: 'auto' })

    // Assess
    expect(result).toMatchObject({
      mode: 'aws',
      sourceArn: await arnOf(queues.dlqUrl),
      destinationArn: await arnOf(queues.queueUrl),
    })
    expect(aws.starts).toEqual([
      { SourceArn: await arnOf(queues.dlqUrl), DestinationArn: await arnOf(queues.queueUrl) },
    ])
    expect(aws.tasks.at(-1)).toMatchObject({
      status: 'RUNNING',
      taskHandle: (result as { taskHandle: string }).taskHandle,
    })
    // SQS moves them in the background; the command moved nothing by hand.
    expect(dlq().bodies).toHaveLength(1)
  })

  it('is refused while a task runs on the DLQ, without moving anything by hand, and starts again once it is done', async () => {
    // Prepare
    await deadLetter([{ body: JSON.stringify(identify()) }])
    await redrive(client, { dlqUrl: queues.dlqUrl, mode: 'auto' })

    // Act
    const second = await redrive(client, { dlqUrl: queues.dlqUrl, mode: 'auto' }).catch(
      (error: Error) => error,
    )
    aws.completeAll()
    const third = await redrive(client, { dlqUrl: queues.dlqUrl, mode: 'auto' })

    // Assess
    expect(second).toMatchObject({
      name: 'InvalidParameterValue',
      message: expect.stringContaining('already running'),
    })
    expect(dlq().bodies).toHaveLength(1)
    expect(peek(queues, queues.queueUrl)).toEqual([])
    expect(third.mode).toBe('aws')
  })

  it('is refused for a source that is no dead-letter queue', async () => {
    const refused = await redrive(client, {
      dlqUrl: queues.queueUrl,
      queueUrl: parkingLot,
      mode: 'auto',
    }).catch((error: Error) => error)

    expect(refused).toMatchObject({
      name: 'InvalidParameterValue',
      message: expect.stringContaining('not the dead-letter queue'),
    })
    expect(aws.tasks.filter((task) => task.status === 'RUNNING')).toEqual([])
  })

  it('redrives a FIFO DLQ only to a FIFO queue: its own events queue by default, never a standard one', async () => {
    // Act
    const toStandard = await redrive(client, {
      dlqUrl: fifo.dlqUrl,
      queueUrl: parkingLot,
      mode: 'auto',
    }).catch((error: Error) => error)
    const toItsQueue = await redrive(client, { dlqUrl: fifo.dlqUrl, mode: 'auto' })

    // Assess
    expect(toStandard).toMatchObject({
      name: 'InvalidParameterValue',
      message: expect.stringContaining('FIFO'),
    })
    expect(toItsQueue).toMatchObject({ mode: 'aws', destinationArn: await arnOf(fifo.queueUrl) })
  })

  it('is refused for a destination ARN that names no queue', async () => {
    const gone = fifo.queueUrl.replace('shop-events', 'shop-gone')

    const refused = await startMoveTask(client, fifo.dlqUrl, gone).catch((error: Error) => error)

    // GetQueueAttributes of a queue that does not exist fails first: no task is asked for.
    expect(refused).toBeInstanceOf(Error)
    expect(aws.starts).toEqual([])
  })
})

describe('pure parts', () => {
  it('keeps every attribute, the dead-letter ones included, as the move task does', () => {
    const attributes = toSqsAttributes({
      type: 'track',
      messageId: 'm-1',
      stage: 'deliver',
      reason: 'r',
      status: '400',
      courierType: 'invalid_request_error',
      deadLetteredAt: '2026-11-28T00:00:00.000Z',
      history: '[{"reason":"older"}]',
      traceId: 't-1',
    })

    expect(redriveAttributes(attributes)).toEqual(attributes)
  })

  it('derives the events queue from the DLQ name, locally and deployed', () => {
    expect(conventionalQueueUrl('http://h:1/000000000000/segment-courier-relay-events-dlq')).toBe(
      'http://h:1/000000000000/segment-courier-relay-events',
    )
    expect(conventionalQueueUrl('https://sqs.us-east-1.amazonaws.com/1/segment-courier-relay-prod-dlq')).toBe(
      'https://sqs.us-east-1.amazonaws.com/1/segment-courier-relay-prod-events',
    )
    expect(conventionalQueueUrl('https://sqs.us-east-1.amazonaws.com/1/other')).toBeUndefined()
  })

  it('recognises "no such operation" answers only', () => {
    expect(isUnsupportedOperation(Object.assign(new Error('x'), { name: 'InvalidAction' }))).toBe(true)
    expect(isUnsupportedOperation(Object.assign(new Error('x'), { name: 'UnsupportedOperation' }))).toBe(true)
    expect(isUnsupportedOperation(Object.assign(new Error('x'), { name: 'AccessDenied' }))).toBe(false)
    expect(isUnsupportedOperation(Object.assign(new Error('x'), { name: 'InvalidParameterValue' }))).toBe(
      false,
    )
  })
})

describe('npm run redrive', () => {
  const capture = () => {
    const out: string[] = []
    const err: string[] = []
    return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } }
  }

  it('--local moves the DLQ of npm start back and says how many', async () => {
    // Prepare
    await deadLetter([{ body: JSON.stringify(identify()) }, { body: JSON.stringify(track()) }])
    const { out, err, io } = capture()

    // Act
    const code = await main(['--local'], { ...io, env: { SQS_PORT: String(port), QUEUE_TYPE: 'standard' } })

    // Assess
    expect({ code, err }).toEqual({ code: 0, err: [] })
    expect(out).toEqual([`moved 2 event(s) from the DLQ back to ${queues.queueUrl}`])
    expect(dlq().bodies).toEqual([])
    expect(peek(queues, queues.queueUrl)).toHaveLength(2)
  })

  it('moves them itself when AWS_ENDPOINT_URL_SQS points at an emulator', async () => {
    await deadLetter([{ body: JSON.stringify(identify()) }])
    const { out, io } = capture()

    const code = await main(['--dlq-url', queues.dlqUrl, '--queue-url', queues.queueUrl], {
      ...io,
      env: { AWS_ENDPOINT_URL_SQS: queues.endpoint },
    })

    expect(code).toBe(0)
    expect(out[0]).toMatch(/^moved 1 event/)
  })

  it('exits 1 when something stayed behind because SQS refused it', async () => {
    await deadLetter([{ body: JSON.stringify(identify()) }])
    const { out, io } = capture()

    const code = await main(
      ['--dlq-url', queues.dlqUrl, '--queue-url', queues.queueUrl.replace('-events', '-nope')],
      {
        ...io,
        env: { AWS_ENDPOINT_URL_SQS: queues.endpoint },
      },
    )

    expect(code).toBe(1)
    expect(out.join('\n')).toMatch(/1 refused by the events queue: still in the DLQ[\s\S]*stopped early/)
    expect(dlq()).toMatchObject({ visible: 1, hidden: 0 })
  })

  it('runs under plain Node (type stripping) as the npm script does', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['lib/cli/redrive.ts', '--help'])

    expect(stdout).toContain('usage: npm run redrive')
  })
})
