import {
  ChangeMessageVisibilityBatchCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import { parseFlags, runCli } from './args.ts'
import { resolveTarget } from './sqs-target.ts'

/**
 * `npm run dlq -- --local | --dlq-url <url> [--max N] [--json]`: lists dead-lettered events with
 * why they are there, without removing them. Messages are received with a short visibility
 * timeout (so each is seen once) and made visible again right after.
 */

export interface DeadLetter {
  readonly sqsMessageId: string
  readonly body: string
  readonly attributes: Readonly<Record<string, string>>
}

const HIDE_SECONDS = 30

export const listDeadLetters = async (sqs: SQSClient, dlqUrl: string, max = 1_000): Promise<DeadLetter[]> => {
  const seen = new Map<string, DeadLetter>()
  const handles: string[] = []
  try {
    while (seen.size < max) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: dlqUrl,
          MaxNumberOfMessages: Math.min(10, max - seen.size),
          VisibilityTimeout: HIDE_SECONDS,
          MessageAttributeNames: ['All'],
          WaitTimeSeconds: 0,
        }),
      )
      if (Messages.length === 0) break
      for (const message of Messages) {
        handles.push(message.ReceiptHandle as string)
        const attributes = Object.fromEntries(
          Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [
            name,
            value.StringValue ?? '',
          ]),
        )
        seen.set(message.MessageId as string, {
          sqsMessageId: message.MessageId as string,
          body: message.Body ?? '',
          attributes,
        })
      }
    }
  } finally {
    // Put everything back as it was: visible at once.
    for (let i = 0; i < handles.length; i += 10) {
      const entries = handles
        .slice(i, i + 10)
        .map((handle, index) => ({ Id: String(index), ReceiptHandle: handle, VisibilityTimeout: 0 }))
      await sqs.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: dlqUrl, Entries: entries }))
    }
  }
  return [...seen.values()]
}

export const describeDeadLetter = ({ attributes: a }: DeadLetter): string =>
  [
    a.deadLetteredAt ?? '-',
    a.stage ?? '-',
    a.status ? `HTTP ${a.status}` : '-',
    a.type ?? '-',
    a.messageId ?? '-',
    a.reason ?? '(no reason recorded)',
    a.truncated === 'true' ? `[truncated from ${a.originalBytes} bytes]` : '',
  ]
    .join('  ')
    .trimEnd()

const USAGE = 'usage: npm run dlq -- (--local | --dlq-url <url>) [--max N] [--json]'

export const main = async (argv: string[]): Promise<number> => {
  const values = parseFlags(
    argv,
    {
      local: { type: 'boolean' },
      'dlq-url': { type: 'string' },
      max: { type: 'string' },
      json: { type: 'boolean' },
    },
    USAGE,
  )
  if (typeof values === 'number') return values
  const target = await resolveTarget(values)
  const letters = await listDeadLetters(target.sqs, target.dlqUrl, Number(values.max ?? 1_000))
  for (const letter of letters) {
    console.log(
      values.json ? JSON.stringify({ ...letter.attributes, body: letter.body }) : describeDeadLetter(letter),
    )
  }
  console.log(`${letters.length} dead-lettered event(s) in ${target.dlqUrl} (left in place)`)
  return 0
}

if (import.meta.main) await runCli(main)
