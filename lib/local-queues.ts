import { type FauxqsServer, startFauxqs } from 'fauxqs'
import { QUEUE_SETTINGS } from './queue-settings.ts'

/**
 * The embedded SQS for `npm start` and the tests: fauxqs in process, speaking the real SQS
 * JSON protocol, with the events queue redriving to its DLQ as the deployed queue does.
 */

export interface LocalQueues {
  readonly server: FauxqsServer
  /** The SQS endpoint to give the SDK (AWS_ENDPOINT_URL_SQS). */
  readonly endpoint: string
  readonly queueUrl: string
  readonly queueArn: string
  readonly dlqUrl: string
  readonly dlqArn: string
  readonly stop: () => Promise<void>
}

export interface LocalQueueOptions {
  readonly port?: number
  readonly name?: string
  readonly visibilityTimeoutSeconds?: number
  readonly maxReceiveCount?: number
}

export const startLocalQueues = async (options: LocalQueueOptions = {}): Promise<LocalQueues> => {
  const server = await startFauxqs({ port: options.port ?? 0, logger: false })
  const name = options.name ?? 'segment-courier-relay-events'
  const retention = String(QUEUE_SETTINGS.retentionSeconds)
  const dlq = server.createQueue(`${name}-dlq`, { attributes: { MessageRetentionPeriod: retention } })
  const queue = server.createQueue(name, {
    attributes: {
      MessageRetentionPeriod: retention,
      VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 60),
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: dlq.queueArn,
        maxReceiveCount: String(options.maxReceiveCount ?? QUEUE_SETTINGS.maxReceiveCount),
      }),
    },
  })
  return {
    server,
    endpoint: server.address,
    queueUrl: queue.queueUrl,
    queueArn: queue.queueArn,
    dlqUrl: dlq.queueUrl,
    dlqArn: dlq.queueArn,
    stop: () => server.stop(),
  }
}
