import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs'
import { parseFlags, runCli } from './args.ts'
import { resolveTarget } from './sqs-target.ts'

/**
 * `npm run redrive -- --local | --dlq-url <url> [--queue-url <url>]`: moves dead-lettered
 * events back to the events queue once whatever refused them is fixed. On AWS it starts an SQS
 * message move task (back to the queue the messages came from); against the local emulator,
 * which has no move tasks, it moves them itself: body unchanged, `type`/`messageId` kept, the
 * dead-letter reason dropped so a new failure records a new reason, deleted from the DLQ only
 * once the events queue has taken them.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html
 */

const KEPT_ATTRIBUTES = ['type', 'messageId']

export const startMoveTask = async (sqs: SQSClient, dlqUrl: string, queueUrl?: string): Promise<string> => {
  const arnOf = async (url: string) =>
    (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })))
      .Attributes?.QueueArn as string
  const result = await sqs.send(
    new StartMessageMoveTaskCommand({
      SourceArn: await arnOf(dlqUrl),
      ...(queueUrl ? { DestinationArn: await arnOf(queueUrl) } : {}),
    }),
  )
  return result.TaskHandle as string
}

export const moveMessages = async (
  sqs: SQSClient,
  dlqUrl: string,
  queueUrl: string,
): Promise<{ moved: number; failed: number }> => {
  let moved = 0
  let failed = 0
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: dlqUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 60,
        MessageAttributeNames: ['All'],
        WaitTimeSeconds: 0,
      }),
    )
    if (Messages.length === 0) return { moved, failed }
    const sent = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: Messages.map((message, index) => ({
          Id: String(index),
          MessageBody: message.Body ?? '',
          MessageAttributes: Object.fromEntries(
            Object.entries(message.MessageAttributes ?? {}).filter(([name]) =>
              KEPT_ATTRIBUTES.includes(name),
            ),
          ),
        })),
      }),
    )
    const ok = (sent.Successful ?? [])
      .map((entry) => Messages[Number(entry.Id)])
      .filter((m) => m !== undefined)
    failed += Messages.length - ok.length
    if (ok.length > 0) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: dlqUrl,
          Entries: ok.map((message, index) => ({
            Id: String(index),
            ReceiptHandle: message.ReceiptHandle as string,
          })),
        }),
      )
    }
    moved += ok.length
    // What SQS refused stays in the DLQ (hidden for a minute); stop rather than spin on it.
    if (ok.length === 0) return { moved, failed }
  }
}

const USAGE = 'usage: npm run redrive -- (--local | --dlq-url <url> [--queue-url <url>])'

export const main = async (argv: string[]): Promise<number> => {
  const values = parseFlags(
    argv,
    {
      local: { type: 'boolean' },
      'dlq-url': { type: 'string' },
      'queue-url': { type: 'string' },
    },
    USAGE,
  )
  if (typeof values === 'number') return values
  const target = await resolveTarget(values)
  if (!target.emulated) {
    const handle = await startMoveTask(target.sqs, target.dlqUrl, target.queueUrl)
    console.log(`started SQS message move task ${handle}`)
    console.log('watch it with: aws sqs list-message-move-tasks --source-arn <DlqArn from the deploy output>')
    return 0
  }
  if (!target.queueUrl) {
    console.error(`the emulator needs the destination: --queue-url <url>\n${USAGE}`)
    return 2
  }
  const { moved, failed } = await moveMessages(target.sqs, target.dlqUrl, target.queueUrl)
  console.log(
    `moved ${moved} event(s) from the DLQ back to ${target.queueUrl}${failed ? `; ${failed} stay in the DLQ` : ''}`,
  )
  return failed > 0 ? 1 : 0
}

if (import.meta.main) await runCli(main)
