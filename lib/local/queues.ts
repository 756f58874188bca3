import { Server } from 'node:net'
import { type FauxqsServer, startFauxqs } from 'fauxqs'
import { QUEUE_SETTINGS } from '../queue/settings.ts'

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

/**
 * fauxqs 2.4 checks message bodies per UTF-16 unit, so it refuses every character outside the
 * Basic Multilingual Plane (emoji), which real SQS accepts (#x10000–#x10FFFF). Segment events
 * carry emoji all the time, so the emulator is brought in line with AWS: its shared check is
 * replaced by SQS's documented rule.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
 */
const SQS_INVALID_BODY = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u
let emulatorAligned: Promise<void> | undefined

const alignEmulatorWithSqs = () => {
  emulatorAligned ??= import(new URL('./sqs/sqsTypes.js', import.meta.resolve('fauxqs')).href).then(
    (types: { INVALID_MESSAGE_BODY_CHAR?: RegExp }) => {
      const check = types.INVALID_MESSAGE_BODY_CHAR
      if (check !== undefined) check.test = (body: string) => SQS_INVALID_BODY.test(body)
    },
  )
  return emulatorAligned
}

/** Every local listener binds loopback only: an emulator with no authentication must not face the network. */
export const LOOPBACK = '127.0.0.1'

let starting: Promise<unknown> = Promise.resolve()

/**
 * fauxqs 2.4 listens on 0.0.0.0 whatever it is given (dist/app.js: `app.listen({ port, host:
 * "0.0.0.0" })`; its `host` option only names the host in queue URLs). The one listen call it
 * makes is bound to loopback instead; starts are serialised so the substitution is only ever in
 * place for one start, and `listen` is restored before the next.
 */
const onLoopback = <T>(start: () => Promise<T>): Promise<T> => {
  const run = starting.then(async () => {
    const listen = Server.prototype.listen
    Server.prototype.listen = function (this: Server, ...args: unknown[]) {
      const [options] = args
      if (
        typeof options === 'object' &&
        options !== null &&
        (options as { host?: unknown }).host === '0.0.0.0'
      ) {
        Server.prototype.listen = listen
        return listen.call(this, { ...options, host: LOOPBACK }, ...(args.slice(1) as []))
      }
      return listen.apply(this, args as Parameters<typeof listen>)
    } as typeof listen
    try {
      return await start()
    } finally {
      Server.prototype.listen = listen
    }
  })
  starting = run.catch(() => undefined)
  return run
}

export const startLocalQueues = async (options: LocalQueueOptions = {}): Promise<LocalQueues> => {
  await alignEmulatorWithSqs()
  const server = await onLoopback(() => startFauxqs({ port: options.port ?? 0, logger: false }))
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
