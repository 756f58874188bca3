import { execFile, execFileSync } from 'node:child_process'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs'
import { describe, expect, it } from 'vitest'
import { formatDeadLetter, listDeadLetters } from '../../lib/cli/dlq.ts'
import { moveLocally, moveMessages, startMoveTask } from '../../lib/cli/redrive.ts'
import { parseConfig } from '../../lib/config.ts'
import { startPoller } from '../../lib/local/sqs-poller.ts'
import { deadLetterMessage } from '../../lib/queue/dead-letter.ts'
import { toSqsAttributes } from '../../lib/queue/sqs-message.ts'
import { verifySignature } from '../../lib/segment/signature.ts'
import { buildTestEvent, curlCommand, sendTestEvent } from '../../lib/segment/test-event.ts'
import { identify, track } from '../support/fixtures.ts'
import {
  dlqMessages,
  enqueueEvents,
  invokeDeliver,
  queuedMessages,
  receiveRecords,
  type TestRelay,
  until,
  useTestRelay,
} from '../support/relay.ts'

let relay: TestRelay
useTestRelay((started) => {
  relay = started
})

/** Dead-letters events the way a misconfigured Courier URL does: every call answered 404. */
const deadLetter = async (events: ReturnType<typeof identify>[]) => {
  await enqueueEvents(relay, events)
  const wrongUrl = relay.deliver({
    config: parseConfig({ ...relay.env, COURIER_BASE_URL: `${relay.sandbox.url}/v0` }),
  })
  await invokeDeliver(wrongUrl, await receiveRecords(relay), relay)
}

describe('npm run dlq', () => {
  it('lists dead-lettered events with their reasons and leaves them in the DLQ', async () => {
    // Prepare
    const events = [identify(), track()]
    await deadLetter(events)

    // Act
    const letters = await listDeadLetters(relay.queues.sqs, relay.queues.dlqUrl)

    // Assess
    expect(letters.map((l) => l.attributes.messageId).sort()).toEqual(events.map((e) => e.messageId).sort())
    expect(letters.every((l) => l.attributes.status === '404' && l.attributes.stage === 'deliver')).toBe(true)
    expect(letters.map((l) => JSON.parse(l.body))).toEqual(expect.arrayContaining(events))
    const again = await listDeadLetters(relay.queues.sqs, relay.queues.dlqUrl)
    expect(again).toHaveLength(2)
    expect(dlqMessages(relay)).toHaveLength(2)
  })

  it('stops at --max', async () => {
    await deadLetter([identify(), identify(), identify()])
    expect(await listDeadLetters(relay.queues.sqs, relay.queues.dlqUrl, 2)).toHaveLength(2)
  })
})

describe('npm run redrive', () => {
  it('moves dead-lettered events back byte-for-byte, and they are delivered once Courier is right', async () => {
    // Prepare
    const events = [identify({ traits: { name: 'Zoë 🦄' } }), track()]
    await deadLetter(events)
    expect(dlqMessages(relay)).toHaveLength(2)

    // Act
    const result = await moveMessages(relay.queues.sqs, relay.queues.dlqUrl, relay.queues.queueUrl)
    const records = await receiveRecords(relay)
    const response = await invokeDeliver(relay.deliver(), records, relay)

    // Assess
    expect(result).toEqual({ moved: 2, failed: 0 })
    expect(records.map((r) => r.body).sort()).toEqual(events.map((e) => JSON.stringify(e)).sort())
    // Every attribute comes back, as SQS's move task keeps them: why it was dead-lettered included.
    for (const record of records) {
      expect(record.messageAttributes.status?.stringValue).toBe('404')
      expect(record.messageAttributes.messageId?.stringValue).toBe(
        (JSON.parse(record.body) as { messageId: string }).messageId,
      )
    }
    expect(response.batchItemFailures).toEqual([])
    expect(
      relay.sandbox
        .delivered()
        .map((r) => r.messageId)
        .sort(),
    ).toEqual(events.map((e) => e.messageId).sort())
    expect(dlqMessages(relay)).toHaveLength(0)
    expect(queuedMessages(relay)).toHaveLength(0)
  })

  it('leaves in the DLQ what the events queue did not take', async () => {
    await deadLetter([identify(), identify()])
    const failing = relay.queues.sqs
    const original = failing.send.bind(failing)
    // The one SDK stand-in: SQS refusing an entry cannot be provoked in the emulator.
    const flaky = {
      send: async (command: { constructor: { name: string }; input: { Entries?: unknown[] } }) => {
        const result = (await original(command as never)) as { Successful?: unknown[]; Failed?: unknown[] }
        if (command.constructor.name === 'SendMessageBatchCommand') {
          return {
            ...result,
            Successful: result.Successful?.slice(1),
            Failed: [{ Id: '0', SenderFault: false }],
          }
        }
        return result
      },
    } as unknown as SQSClient

    const result = await moveMessages(flaky, relay.queues.dlqUrl, relay.queues.queueUrl)

    expect(result.failed).toBeGreaterThan(0)
    expect(result.moved + result.failed).toBeGreaterThanOrEqual(2)
    expect(dlqMessages(relay).length).toBe(result.failed)
  })

  it('on AWS starts a message move task from the DLQ ARN to the events queue ARN', async () => {
    const sent: { name: string; input: Record<string, unknown> }[] = []
    const aws = {
      send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
        sent.push({ name: command.constructor.name, input: command.input })
        if (command.constructor.name === 'GetQueueAttributesCommand') {
          return {
            Attributes: {
              QueueArn: `arn:aws:sqs:us-east-1:123:${String(command.input.QueueUrl).split('/').pop()}`,
            },
          }
        }
        return { TaskHandle: 'task-1' }
      },
    } as unknown as SQSClient

    const handle = await startMoveTask(aws, 'https://sqs.us-east-1.amazonaws.com/123/relay-dlq')

    expect(handle).toBe('task-1')
    expect(sent.at(-1)).toEqual({
      name: 'StartMessageMoveTaskCommand',
      input: {
        SourceArn: 'arn:aws:sqs:us-east-1:123:relay-dlq',
        DestinationArn: 'arn:aws:sqs:us-east-1:123:relay-events',
      },
    })
  })

  it('against a still-broken Courier moves each event once; the new dead letters keep the earlier reasons', async () => {
    // Prepare: two dead letters, and the relay running (as under npm start) with Courier still broken
    const events = [identify(), track()]
    await deadLetter(events)
    const broken = relay.deliver({
      config: parseConfig({ ...relay.env, COURIER_BASE_URL: `${relay.sandbox.url}/v0` }),
    })
    const poller = startPoller({
      sqs: relay.queues.sqs,
      queueUrl: relay.queues.queueUrl,
      queueArn: relay.queues.queueArn,
      handler: broken,
      waitTimeSeconds: 1,
      onError: () => undefined,
    })

    // Act: redrive while the relay dead-letters again whatever comes back
    let result: Awaited<ReturnType<typeof moveLocally>>
    try {
      result = await moveLocally(relay.queues.sqs, {
        dlqUrl: relay.queues.dlqUrl,
        queueUrl: relay.queues.queueUrl,
        waitSeconds: 1,
      })
      await until(() => dlqMessages(relay).length === 2 && queuedMessages(relay).length === 0)
    } finally {
      await poller.stop()
    }

    // Assess: each moved once, and each new dead letter says why now and why before
    expect(result.moved).toBe(2)
    const letters = await listDeadLetters(relay.queues.sqs, relay.queues.dlqUrl)
    expect(letters.map((l) => l.messageId).sort()).toEqual(events.map((e) => e.messageId).sort())
    for (const letter of letters) {
      expect(letter.status).toBe(404)
      expect(letter.history).toEqual([
        { at: expect.any(String), stage: 'deliver', status: '404', reason: 'Not Found' },
      ])
      expect(letter.history[0]?.at).not.toBe(letter.deadLetteredAt)
      expect(formatDeadLetter(letter)).toMatch(/dead-lettered 1 time\(s\) before: Not Found/)
    }
  })

  it('keeps the truncation flag of a dead letter that SQS moved back and that fails again', async () => {
    // Prepare: a truncated dead letter, back on the events queue with its attributes (as the move task does)
    const big = identify({ traits: { blob: 'x'.repeat(5_000) } })
    const truncated = deadLetterMessage(
      JSON.stringify(big),
      { stage: 'ingest', reason: 'event too large', messageId: big.messageId, type: 'identify' },
      2_000,
    )
    await relay.queues.sqs.send(
      new SendMessageCommand({
        QueueUrl: relay.queues.queueUrl,
        MessageBody: truncated.body,
        MessageAttributes: toSqsAttributes(truncated.attributes),
        // On the FIFO events queue it comes back in its user's group, as the move task brings it.
        MessageGroupId: 'user:user-1',
        MessageDeduplicationId: 'redrive:truncated-1',
      }),
    )

    // Act
    const response = await invokeDeliver(relay.deliver(), await receiveRecords(relay), relay)

    // Assess
    expect(response.batchItemFailures).toEqual([])
    const [letter] = await listDeadLetters(relay.queues.sqs, relay.queues.dlqUrl)
    expect(letter?.reason).toMatch(/not JSON/)
    expect(letter?.truncated).toBe(true)
    expect(letter?.originalBytes).toBe(Buffer.byteLength(JSON.stringify(big)))
    expect(letter?.history).toEqual([expect.objectContaining({ stage: 'ingest', reason: 'event too large' })])
    expect(letter?.messageId).toBe(big.messageId)
  })
})

describe('npm run send-test-event', () => {
  const capture = async () => {
    const seen: { headers: IncomingHttpHeaders; body: string }[] = []
    const server = createServer((request, response) => {
      let body = ''
      request.on('data', (chunk) => {
        body += chunk
      })
      request.on('end', () => {
        seen.push({ headers: request.headers, body })
        response.writeHead(200, { 'content-type': 'application/json' }).end('{"accepted":1,"rejected":[]}')
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/segment`
    return { seen, url, stop: () => new Promise((resolve) => server.close(resolve)) }
  }

  it('posts as Segment does: headers, and a signature over the first element of a batch', async () => {
    const target = await capture()
    const batch = [buildTestEvent({ type: 'track' }), buildTestEvent({ type: 'track' })]

    const answer = await sendTestEvent(target.url, batch, { secret: 's3cret', token: 'tok' })
    await target.stop()

    const [request] = target.seen
    expect(answer.status).toBe(200)
    expect(request?.headers['user-agent']).toBe('Segment.io/1.0')
    expect(request?.headers['content-type']).toBe('application/json')
    expect(request?.headers.authorization).toBe('Bearer tok')
    expect(request?.body).toBe(JSON.stringify(batch))
    const signature = request?.headers['x-signature'] as string
    expect(verifySignature('s3cret', signature, JSON.stringify(batch[0]), () => batch[0])).toBe(true)
  })

  // curl is what a person pastes the command into; a machine without it cannot run this check.
  const hasCurl = (() => {
    try {
      execFileSync('curl', ['--version'], { stdio: 'ignore' })
      return true
    } catch {
      return false
    }
  })()

  it.skipIf(!hasCurl)('prints a curl command that sends the exact body and a valid signature', async () => {
    const target = await capture()
    const event = { ...buildTestEvent({ type: 'identify' }), traits: { name: 'O\'Brien "quoted" $HOME `x`' } }

    // Asynchronously: the server answering curl runs in this process.
    await promisify(execFile)('bash', ['-c', curlCommand(target.url, 's3cret', event)])
    await target.stop()

    const [request] = target.seen
    expect(request?.body).toBe(JSON.stringify(event))
    expect(
      verifySignature('s3cret', request?.headers['x-signature'] as string, request?.body ?? '', () => event),
    ).toBe(true)
  })
})
