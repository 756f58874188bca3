import { GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs'
import { createSqsClient } from '../sqs-client.ts'

/**
 * Which queues a CLI works on: `--local` means the queues `npm start` runs (embedded SQS on
 * SQS_PORT, default 4566); otherwise the URLs given, as printed by the deploy (QueueUrl, DlqUrl).
 */

export const LOCAL_QUEUE_NAME = 'segment-courier-relay-events'
export const LOCAL_DLQ_NAME = `${LOCAL_QUEUE_NAME}-dlq`

export const localEndpoint = (port = Number(process.env.SQS_PORT ?? 4566)) => `http://127.0.0.1:${port}`

export interface SqsTarget {
  readonly sqs: SQSClient
  readonly queueUrl: string | undefined
  readonly dlqUrl: string
  /** True when talking to an emulator (an endpoint override), where StartMessageMoveTask does not exist. */
  readonly emulated: boolean
}

export interface TargetFlags {
  readonly local?: boolean | undefined
  readonly 'queue-url'?: string | undefined
  readonly 'dlq-url'?: string | undefined
}

export const resolveTarget = async (flags: TargetFlags): Promise<SqsTarget> => {
  if (flags.local) {
    const sqs = createSqsClient({
      endpoint: localEndpoint(),
      region: process.env.AWS_REGION ?? 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    })
    const url = async (name: string) =>
      (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl as string
    return { sqs, queueUrl: await url(LOCAL_QUEUE_NAME), dlqUrl: await url(LOCAL_DLQ_NAME), emulated: true }
  }
  const dlqUrl = flags['dlq-url'] ?? process.env.DLQ_URL
  if (!dlqUrl)
    throw new Error('say which DLQ: --local, or --dlq-url <DlqUrl from the deploy output> (or DLQ_URL)')
  return {
    sqs: createSqsClient(),
    queueUrl: flags['queue-url'] ?? process.env.QUEUE_URL,
    dlqUrl,
    emulated: Boolean(process.env.AWS_ENDPOINT_URL_SQS || process.env.AWS_ENDPOINT_URL),
  }
}
