import { SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { plainDeadLetter } from '../../lib/queue/dead-letter.ts'
import { enqueue } from '../../lib/queue/enqueue.ts'
import {
  messageSize,
  type OutgoingMessage,
  outgoingMessage,
  toSqsAttributes,
} from '../../lib/queue/sqs-message.ts'
import { bodies, clearQueues, receiveAll, startTestQueues, type TestQueues } from '../support/queues.ts'

/**
 * The embedded SQS refuses what SQS refuses, so the relay's refusal paths are tested for real:
 * a String attribute value follows the body's character rule (no U+FFFE, U+FFFF, lone surrogates,
 * control characters but tab, LF and CR), and must not be empty.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html
 */

let queues: TestQueues
beforeAll(async () => {
  // Standard queues: the attribute rules are the same on FIFO ones (tests/local/fifo-queues.test.ts).
  queues = await startTestQueues({ queueType: 'standard' })
})
afterAll(() => queues.stop())
beforeEach(() => clearQueues(queues))

/** A message as the SDK would send it, attributes not made safe: what SQS itself is given. */
const raw = (body: string, attributes: Record<string, string>): OutgoingMessage => ({
  body,
  attributes,
  size: messageSize(body, attributes),
})

const entry = (id: string, message: OutgoingMessage) => ({
  Id: id,
  MessageBody: message.body,
  MessageAttributes: toSqsAttributes(message.attributes),
})

describe('the embedded SQS and message attributes', () => {
  it.each([
    ['U+FFFF', 'm-\uFFFF'],
    ['U+FFFE', '\uFFFEm'],
    ['a lone surrogate', 'm-\uD800'],
    ['a control character', 'm-\u0001'],
  ])('fails only the batch entry whose attribute holds %s, with SenderFault', async (_, value) => {
    // Act
    const result = await queues.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queues.queueUrl,
        Entries: [
          entry('good', raw('{"a":1}', { messageId: 'm-1' })),
          entry('bad', raw('{"a":2}', { messageId: value })),
        ],
      }),
    )

    // Assess
    expect(result.Successful?.map((e) => e.Id)).toEqual(['good'])
    expect(result.Failed).toEqual([
      expect.objectContaining({ Id: 'bad', SenderFault: true, Code: 'InvalidParameterValue' }),
    ])
    expect(bodies(queues, queues.queueUrl)).toEqual(['{"a":1}'])
  })

  it('refuses SendMessage with such an attribute, and an empty attribute value', async () => {
    const send = (value: string) =>
      queues.sqs.send(
        new SendMessageCommand({
          QueueUrl: queues.dlqUrl,
          MessageBody: '{}',
          MessageAttributes: { reason: { DataType: 'String', StringValue: value } },
        }),
      )

    await expect(send('bad \uFFFF')).rejects.toMatchObject({
      name: expect.stringMatching(/InvalidParameterValue$/),
      $fault: 'client',
    })
    await expect(send('')).rejects.toMatchObject({ name: expect.stringMatching(/InvalidParameterValue$/) })
    expect(bodies(queues, queues.dlqUrl)).toEqual([])
  })

  it('takes emoji and every other character SQS allows, in the body and in attributes', async () => {
    const text = 'tab\t nl\n cr\r 🦄 \uE000 \uFFFD \u{10FFFF}'

    await queues.sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.queueUrl,
        MessageBody: text,
        MessageAttributes: { reason: { DataType: 'String', StringValue: text } },
      }),
    )
    const [message] = await receiveAll(queues.sqs, queues.queueUrl)

    expect(message?.Body).toBe(text)
    expect(message?.MessageAttributes?.reason?.StringValue).toBe(text)
  })
})

describe('what the relay sends passes it', () => {
  it('outgoingMessage makes every attribute value safe, even one cut inside a surrogate pair', async () => {
    // Prepare: the 1,000-character cut falls between the halves of an emoji
    const reason = `${'x'.repeat(999)}🦄 and more`
    const message = outgoingMessage('{}', { messageId: 'm-\uFFFF-\uD800', reason, type: 'track' })

    // Act
    const result = await queues.sqs.send(
      new SendMessageBatchCommand({ QueueUrl: queues.queueUrl, Entries: [entry('0', message)] }),
    )

    // Assess
    expect(result.Failed ?? []).toEqual([])
    expect(message.attributes.messageId).toBe('m-\\uffff-\\ud800')
    expect(message.attributes.reason).toBe(`${'x'.repeat(999)}\\ud83e`)
  })

  it('enqueue returns a SenderFault entry apart, with SQS’s reason, and stores the others', async () => {
    const good = outgoingMessage('{"n":1}', { messageId: 'm-1' })
    const bad = raw('{"n":2}', { messageId: 'm-\uFFFF' })

    const result = await enqueue(queues.sqs, [good, bad], {
      queueUrl: queues.queueUrl,
      batchMaxBytes: 1_048_576,
      deadline: Date.now() + 5_000,
    })

    expect(result.unsent).toEqual([])
    expect(result.refused).toEqual([
      {
        message: bad,
        reason: expect.stringMatching(/^SQS refused it: InvalidParameterValue: .*invalid characters/),
      },
    ])
    expect(result.calls).toBe(1)
    expect(bodies(queues, queues.queueUrl)).toEqual(['{"n":1}'])
  })

  it('plainDeadLetter lands where the refused dead letter did not', async () => {
    const refused = raw('{"n":3}', { stage: 'deliver', reason: 'Courier said \uFFFF\uD800 🦄' })
    const plain = plainDeadLetter(refused, 'InvalidParameterValue: invalid characters')

    await expect(
      queues.sqs.send(
        new SendMessageCommand({
          QueueUrl: queues.dlqUrl,
          MessageBody: refused.body,
          MessageAttributes: toSqsAttributes(refused.attributes),
        }),
      ),
    ).rejects.toMatchObject({ $fault: 'client' })
    await queues.sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.dlqUrl,
        MessageBody: plain.body,
        MessageAttributes: toSqsAttributes(plain.attributes),
      }),
    )
    const [landed] = await receiveAll(queues.sqs, queues.dlqUrl)

    expect(landed?.Body).toBe('{"n":3}')
    expect(landed?.MessageAttributes?.reason?.StringValue).toBe('Courier said \\uffff\\ud800 \\ud83e\\udd84')
    expect(landed?.MessageAttributes?.deadLetterRefused?.StringValue).toBe(
      'InvalidParameterValue: invalid characters',
    )
  })
})
