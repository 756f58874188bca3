import { type FauxqsServer, startFauxqs } from 'fauxqs'
import type { QueueType } from '../config.ts'
import { FIFO_ATTRIBUTES, QUEUE_SETTINGS } from '../queue/settings.ts'
import { alignFauxqsWithSqs, onLoopback } from './fauxqs-patches.ts'

export type { QueueType }

/**
 * The embedded SQS for `npm start` and the tests: fauxqs in process, speaking the real SQS
 * JSON protocol, with the events queue redriving to its DLQ as the deployed queue does. FIFO by
 * default, with the deployed queues' attributes (high-throughput mode); `queueType: 'standard'`
 * gives the standard pair. Where fauxqs differs from SQS, lib/local/fauxqs-patches.ts brings it in
 * line (pinned version, checked before it patches).
 */

export interface LocalQueues {
  readonly server: FauxqsServer
  /** The SQS endpoint to give the SDK (AWS_ENDPOINT_URL_SQS). */
  readonly endpoint: string
  readonly queueUrl: string
  readonly queueArn: string
  readonly dlqUrl: string
  readonly dlqArn: string
  /** The audience queue: audience events waiting for the list sync (lib/audiences/list-sync.ts). */
  readonly audienceQueueUrl: string
  readonly audienceQueueArn: string
  readonly stop: () => Promise<void>
}

export interface LocalQueueOptions {
  readonly port?: number
  /** The events queue's name without `.fifo`; the DLQ is `<name>-dlq`. */
  readonly name?: string
  readonly queueType?: QueueType
  readonly visibilityTimeoutSeconds?: number
  readonly maxReceiveCount?: number
  /** The events queue's MaximumMessageSize (SQS's default and maximum: 1 MiB). */
  readonly maxMessageBytes?: number
  /** The DLQ's MaximumMessageSize (the same default). */
  readonly dlqMaxMessageBytes?: number
}

export const startLocalQueues = async (options: LocalQueueOptions = {}): Promise<LocalQueues> => {
  await alignFauxqsWithSqs()
  const server = await onLoopback(() => startFauxqs({ port: options.port ?? 0, logger: false }))
  const name = options.name ?? 'segment-courier-relay-events'
  const fifo = (options.queueType ?? 'fifo') === 'fifo'
  const suffix = fifo ? '.fifo' : ''
  const retention = String(QUEUE_SETTINGS.retentionSeconds)
  // The deployed FIFO attributes (serverless.yml): high-throughput mode, explicit deduplication ids.
  const kind = fifo ? { ...FIFO_ATTRIBUTES } : {}
  const dlq = server.createQueue(`${name}-dlq${suffix}`, {
    attributes: {
      ...kind,
      MessageRetentionPeriod: retention,
      ...(options.dlqMaxMessageBytes === undefined
        ? {}
        : { MaximumMessageSize: String(options.dlqMaxMessageBytes) }),
    },
  })
  const queue = server.createQueue(`${name}${suffix}`, {
    attributes: {
      ...kind,
      MessageRetentionPeriod: retention,
      VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 60),
      ...(options.maxMessageBytes === undefined
        ? {}
        : { MaximumMessageSize: String(options.maxMessageBytes) }),
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: dlq.queueArn,
        maxReceiveCount: String(options.maxReceiveCount ?? QUEUE_SETTINGS.maxReceiveCount),
      }),
    },
  })
  // A standard queue, as deployed: the list sync coalesces by event time, not arrival order. SQS
  // moves a standard queue's messages only to a standard DLQ, so next to a FIFO DLQ it has its own.
  const audienceDlq = fifo
    ? server.createQueue(`${name}-audiences-dlq`, { attributes: { MessageRetentionPeriod: retention } })
    : dlq
  const audiences = server.createQueue(`${name}-audiences`, {
    attributes: {
      MessageRetentionPeriod: retention,
      VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 60),
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: audienceDlq.queueArn,
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
    audienceQueueUrl: audiences.queueUrl,
    audienceQueueArn: audiences.queueArn,
    stop: () => server.stop(),
  }
}
