import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { type Message, SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { errorHint } from '../../lib/cli/args.ts'
import {
  DEAD_LETTER_HEADER,
  type DeadLetter,
  deadLetterJson,
  formatDeadLetter,
  listDeadLetters,
  main,
  toDeadLetter,
} from '../../lib/cli/dlq.ts'
import { cliTarget, localTarget, regionOfQueueUrl } from '../../lib/cli/target.ts'
import { type DeadLetterReason, deadLetterMessage } from '../../lib/queue/dead-letter.ts'
import { toSqsAttributes } from '../../lib/queue/sqs-message.ts'
import { DEV_USER_KEY_SECRET, userKeyWith } from '../../lib/user-key.ts'
import { identify, track } from '../support/fixtures.ts'
import { clearQueues, peek, startTestQueues, type TestQueues } from '../support/queues.ts'

let queues: TestQueues
let port: number

beforeAll(async () => {
  // Standard queues here; the FIFO behaviour has its own tests below.
  queues = await startTestQueues({ queueType: 'standard' })
  port = Number(new URL(queues.endpoint).port)
})
afterAll(() => queues.stop())
beforeEach(() => clearQueues(queues))

/** Puts dead letters on the DLQ exactly as ingest and deliver write them. */
const deadLetter = async (items: { body: string; why: DeadLetterReason; maxBytes?: number }[]) => {
  const entries = items.map(({ body, why, maxBytes }, index) => {
    const message = deadLetterMessage(body, why, maxBytes ?? 262_144)
    return {
      Id: String(index),
      MessageBody: message.body,
      MessageAttributes: toSqsAttributes(message.attributes),
    }
  })
  await queues.sqs.send(new SendMessageBatchCommand({ QueueUrl: queues.dlqUrl, Entries: entries }))
}

const refused = (event: { type: string; messageId: string }, status: number, reason: string) => ({
  body: JSON.stringify(event),
  why: { stage: 'deliver' as const, reason, status, type: event.type, messageId: event.messageId },
})

/** What the DLQ holds, read from the emulator's state (no receive, so no visibility change). */
const dlqState = () => {
  const state = queues.server.inspectQueue('segment-courier-relay-events-dlq')
  if (!state) throw new Error('no DLQ')
  return {
    visible: state.messages.ready.length,
    hidden: state.messages.inflight.length,
    all: peek(queues, queues.dlqUrl),
  }
}

/** The key npm run dlq shows for a userId when no USER_KEY_SECRET is set. */
const devKey = userKeyWith(DEV_USER_KEY_SECRET)

const capture = () => {
  const out: string[] = []
  const err: string[] = []
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } }
}

describe('listDeadLetters', () => {
  it('lists every dead letter with its reason and leaves each in the DLQ, visible', async () => {
    // Prepare
    const events = [identify(), track(), identify()]
    await deadLetter([
      refused(events[0]!, 400, 'Courier: [{"error":" must have required property \'traits\'"}]'),
      refused(events[1]!, 404, 'Courier: Not Found'),
      { body: '{"type":"nope"', why: { stage: 'ingest', reason: 'body is not JSON' } },
    ])

    // Act
    const letters = await listDeadLetters(queues.sqs, queues.dlqUrl, { waitSeconds: 0 })

    // Assess
    expect(letters).toHaveLength(3)
    const byStatus = Object.fromEntries(letters.map((l) => [l.status ?? l.stage, l]))
    expect(byStatus[400]).toMatchObject({
      stage: 'deliver',
      type: 'identify',
      messageId: events[0]!.messageId,
      reason: expect.stringContaining("required property 'traits'"),
      truncated: false,
      body: JSON.stringify(events[0]),
    })
    expect(byStatus[404]?.reason).toBe('Courier: Not Found')
    expect(byStatus.ingest).toMatchObject({
      reason: 'body is not JSON',
      body: '{"type":"nope"',
      status: undefined,
    })
    expect(letters.every((l) => /^\d{4}-\d\d-\d\dT/.test(l.deadLetteredAt ?? ''))).toBe(true)
    expect(dlqState()).toMatchObject({ visible: 3, hidden: 0 })
  })

  it('can be run again and again: nothing is removed or hidden', async () => {
    // Prepare
    await deadLetter([refused(identify(), 400, 'a'), refused(track(), 400, 'b')])

    // Act
    const first = await listDeadLetters(queues.sqs, queues.dlqUrl, { waitSeconds: 0 })
    const second = await listDeadLetters(queues.sqs, queues.dlqUrl, { waitSeconds: 0 })

    // Assess
    expect(second.map((l) => l.sqsMessageId).sort()).toEqual(first.map((l) => l.sqsMessageId).sort())
    expect(dlqState()).toMatchObject({ visible: 2, hidden: 0 })
  })

  it('stops at max and still leaves every message visible', async () => {
    // Prepare: more than one receive's worth
    await deadLetter(Array.from({ length: 10 }, (_, i) => refused(identify(), 400, `r${i}`)))
    await deadLetter(Array.from({ length: 5 }, (_, i) => refused(track(), 404, `s${i}`)))

    // Act
    const some = await listDeadLetters(queues.sqs, queues.dlqUrl, { max: 12, waitSeconds: 0 })
    const all = await listDeadLetters(queues.sqs, queues.dlqUrl, { waitSeconds: 0 })

    // Assess
    expect(some).toHaveLength(12)
    expect(new Set(some.map((l) => l.sqsMessageId)).size).toBe(12)
    expect(all).toHaveLength(15)
    expect(dlqState()).toMatchObject({ visible: 15, hidden: 0 })
  })

  it('puts back what it received when SQS fails half-way', async () => {
    // Prepare: the second receive fails outright
    await deadLetter(Array.from({ length: 10 }, () => refused(identify(), 400, 'x')))
    await deadLetter(Array.from({ length: 3 }, () => refused(identify(), 400, 'y')))
    let receives = 0
    const flaky = {
      send: (command: { constructor: { name: string } }) => {
        if (command.constructor.name === 'ReceiveMessageCommand' && ++receives === 2) {
          return Promise.reject(new Error('connection reset'))
        }
        return queues.sqs.send(command as never)
      },
    } as unknown as SQSClient

    // Act
    const listing = listDeadLetters(flaky, queues.dlqUrl, { waitSeconds: 0 })

    // Assess
    await expect(listing).rejects.toThrow('connection reset')
    expect(dlqState()).toMatchObject({ visible: 13, hidden: 0 })
  })

  it('takes a bare number as max, as its first version did', async () => {
    await deadLetter([
      refused(identify(), 400, 'a'),
      refused(identify(), 400, 'b'),
      refused(identify(), 400, 'c'),
    ])

    expect(await listDeadLetters(queues.sqs, queues.dlqUrl, 2)).toHaveLength(2)
  })
})

describe('formatting', () => {
  const letter = (attributes: Record<string, string>, body = '{}'): DeadLetter =>
    toDeadLetter({
      MessageId: 'sqs-1',
      Body: body,
      MessageAttributes: toSqsAttributes(attributes),
    } as Message)

  it('prints when, where, status, type, user key, messageId and reason on one line', () => {
    const line = formatDeadLetter(
      letter({
        deadLetteredAt: '2026-11-28T12:00:00.000Z',
        stage: 'deliver',
        status: '400',
        type: 'track',
        messageId: 'm-1',
        reason: 'Courier: bad',
      }),
    )

    expect(line).toBe('2026-11-28T12:00:00.000Z  deliver  400  track  -  m-1  Courier: bad')
  })

  it('says truncated, with the original size', () => {
    const message = deadLetterMessage(
      JSON.stringify(identify({ traits: { blob: 'x'.repeat(5_000) } })),
      { stage: 'ingest', reason: 'event too large' },
      2_000,
    )

    const line = formatDeadLetter(letter(message.attributes, message.body))

    expect(line).toMatch(/event too large {2}truncated \(\d{4} bytes originally\)$/)
  })

  it('explains a dead letter without a reason (moved by SQS after maxReceiveCount)', () => {
    expect(formatDeadLetter(letter({}))).toBe(
      '-  -  -  -  -  -  (no reason: moved by SQS after maxReceiveCount receives)',
    )
  })

  it('gives JSON lines with the body', () => {
    const parsed = JSON.parse(deadLetterJson(letter({ reason: 'r', status: '404' }, '{"a":1}')))

    expect(parsed).toMatchObject({ reason: 'r', status: 404, body: '{"a":1}', truncated: false })
  })
})

describe('npm run dlq', () => {
  it('--local finds the queues of npm start on SQS_PORT and prints one line per event and the total', async () => {
    // Prepare
    const event = track()
    await deadLetter([refused(event, 404, 'Courier: Not Found'), refused(identify(), 400, 'Courier: bad')])
    const { out, err, io } = capture()

    // Act
    const code = await main(['--local'], { ...io, env: { SQS_PORT: String(port), QUEUE_TYPE: 'standard' } })

    // Assess
    expect({ code, err }).toEqual({ code: 0, err: [] })
    expect(out).toHaveLength(4)
    expect(out[0]).toBe(DEAD_LETTER_HEADER)
    expect(out.find((l) => l.includes(event.messageId))).toMatch(
      new RegExp(
        ` {2}deliver {2}404 {2}track {2}${devKey(event.userId as string)} {2}.+ {2}Courier: Not Found$`,
      ),
    )
    expect(out.join('\n')).not.toContain(event.userId as string)
    expect(out[3]).toMatch(/^2 dead-lettered event\(s\) listed from .+-events-dlq; nothing was removed$/)
    expect(dlqState()).toMatchObject({ visible: 2, hidden: 0 })
  })

  it('--json prints JSON lines with the body on stdout and the total on stderr', async () => {
    // Prepare
    const event = identify()
    await deadLetter([refused(event, 400, 'Courier: bad')])
    const { out, err, io } = capture()

    // Act
    const code = await main(['--dlq-url', queues.dlqUrl, '--json'], {
      ...io,
      env: { AWS_ENDPOINT_URL_SQS: queues.endpoint },
    })

    // Assess
    expect(code).toBe(0)
    expect(out.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({ status: 400, reason: 'Courier: bad', body: JSON.stringify(event) }),
    ])
    expect(err).toEqual([expect.stringMatching(/^1 dead-lettered event/)])
  })

  it('--user shows only the dead letters of that person, by their key, and never prints the id', async () => {
    // Prepare: two people, one of them with an email as userId
    const jane = track({ userId: 'jane.doe@example.com' })
    const other = identify({ userId: 'someone-else' })
    await deadLetter([refused(jane, 400, 'Courier: bad'), refused(other, 400, 'Courier: bad')])
    const { out, io } = capture()
    const env = { SQS_PORT: String(port), QUEUE_TYPE: 'standard', USER_KEY_SECRET: 'stage-secret' }

    // Act
    const code = await main(['--local', '--user', 'jane.doe@example.com'], { ...io, env })

    // Assess: the key is made with the stage's secret from the environment
    expect(code).toBe(0)
    const key = userKeyWith('stage-secret')('jane.doe@example.com')
    expect(out).toEqual([
      DEAD_LETTER_HEADER,
      expect.stringContaining(`  track  ${key}  ${jane.messageId}  Courier: bad`),
      expect.stringMatching(new RegExp(`^1 dead-lettered event\\(s\\) of user key ${key} \\(1 of 2 read\\)`)),
    ])
    expect(out.join('\n')).not.toContain('jane.doe')
  })

  it('a queue of the other type: the error gets a QUEUE_TYPE hint', async () => {
    // Prepare: npm start's queues are standard here; the CLI is left at the default, fifo
    const env = { SQS_PORT: String(port) }

    // Act
    const error = await main(['--local'], { ...capture().io, env }).catch((thrown: unknown) => thrown)

    // Assess
    expect((error as Error).message).toMatch(/specified queue does not exist/)
    expect(errorHint(error, env)).toBe(
      ' (looked for the fifo queues, QUEUE_TYPE=fifo: set QUEUE_TYPE to the one `npm start` runs, or check --dlq-url/--queue-url)',
    )
  })

  it('--max shows fewer and says how many there are', async () => {
    await deadLetter(Array.from({ length: 4 }, () => refused(identify(), 400, 'x')))
    const { out, io } = capture()

    const code = await main(['--local', '--max', '3'], {
      ...io,
      env: { SQS_PORT: String(port), QUEUE_TYPE: 'standard' },
    })

    expect(code).toBe(0)
    expect(out).toHaveLength(5)
    expect(out[4]).toMatch(/^3 dead-lettered event\(s\) listed .+ \(about 4 in the DLQ; --max to see more\)/)
  })

  it.each([
    [['--bogus']],
    [['--max', '0', '--local']],
    [['--max', 'ten', '--local']],
    [[]],
    [['--local', '--dlq-url', 'https://sqs.us-east-1.amazonaws.com/1/q']],
    [['stray']],
  ])('answers %j with the usage and exit code 2', async (argv) => {
    // Prepare: parseFlags reports bad flags on console.error itself
    const { err, io } = capture()
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined)

    // Act
    const code = await main(argv, { ...io, env: {} })

    // Assess
    const printed = [...err, ...consoleError.mock.calls.map((call) => String(call[0]))]
    consoleError.mockRestore()
    expect(code).toBe(2)
    expect(printed.join('\n')).toContain('usage: npm run dlq')
  })

  it('runs under plain Node (type stripping) as the npm script does', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['lib/cli/dlq.ts', '--help'])

    expect(stdout).toContain('usage: npm run dlq')
  })
})

describe('local target', () => {
  it('builds the URLs npm start uses, for any port', () => {
    expect(localTarget(4567)).toEqual({
      endpoint: 'http://127.0.0.1:4567',
      queueUrl: 'http://sqs.us-east-1.localhost:4567/000000000000/segment-courier-relay-events.fifo',
      dlqUrl: 'http://sqs.us-east-1.localhost:4567/000000000000/segment-courier-relay-events-dlq.fifo',
    })
    expect(localTarget(4567, 'standard').dlqUrl).toBe(
      'http://sqs.us-east-1.localhost:4567/000000000000/segment-courier-relay-events-dlq',
    )
    expect(localTarget(port, 'standard').dlqUrl).toBe(queues.dlqUrl)
  })

  it('signs for the region the queue URL names, and treats an endpoint override as an emulator', () => {
    const url = 'https://sqs.eu-west-1.amazonaws.com/123456789012/segment-courier-relay-prod-dlq'

    expect(regionOfQueueUrl(url)).toBe('eu-west-1')
    expect(cliTarget({ 'dlq-url': url }, { AWS_REGION: 'us-east-1' })).toMatchObject({
      region: 'eu-west-1',
      emulated: false,
      endpoint: undefined,
    })
    expect(cliTarget({}, { DLQ_URL: url, AWS_ENDPOINT_URL: 'http://127.0.0.1:9324' })).toMatchObject({
      dlqUrl: url,
      emulated: true,
      endpoint: 'http://127.0.0.1:9324',
    })
  })
})
