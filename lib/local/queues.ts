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
  /** The audience queue: audience events waiting for the list sync (lib/deliver/audience-sync.ts). */
  readonly audienceQueueUrl: string
  readonly audienceQueueArn: string
  readonly stop: () => Promise<void>
}

export interface LocalQueueOptions {
  readonly port?: number
  readonly name?: string
  readonly visibilityTimeoutSeconds?: number
  readonly maxReceiveCount?: number
  /** The events queue's MaximumMessageSize (SQS's default and maximum: 1 MiB). */
  readonly maxMessageBytes?: number
}

/**
 * SQS's character rule for a message body, and for every String message attribute value, which
 * "has the same restrictions on the content as the message body":
 * #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html
 */
const SQS_INVALID_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u

interface AttributeValue {
  readonly DataType?: string
  readonly StringValue?: string
}
interface SendEntry {
  readonly Id?: string
  readonly MessageAttributes?: Readonly<Record<string, AttributeValue>>
}
type Handler = (body: Record<string, unknown>, store: unknown, request: unknown) => unknown
type SqsErrorClass = new (code: string, message: string) => Error

/** Why SQS would refuse these attributes, or undefined when it takes them. */
const attributeProblem = (attributes: SendEntry['MessageAttributes']): string | undefined => {
  for (const [name, value] of Object.entries(attributes ?? {})) {
    const text = value.StringValue
    if (value.DataType?.startsWith('Binary') || text === undefined) continue
    if (text === '') return `The message attribute '${name}' must contain non-empty message attribute value.`
    if (SQS_INVALID_CHAR.test(text)) {
      return `Message attribute '${name}' contains invalid characters. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.`
    }
  }
  return undefined
}

/**
 * SendMessage refuses the call; SendMessageBatch fails just that entry with SenderFault, and
 * the other entries go through, as SQS answers a batch.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
 */
const checkingAttributes = (action: string, handler: Handler, SqsError: SqsErrorClass): Handler => {
  if (action === 'SendMessage') {
    return (body, store, request) => {
      const problem = attributeProblem(body.MessageAttributes as SendEntry['MessageAttributes'])
      if (problem !== undefined) throw new SqsError('InvalidParameterValue', problem)
      return handler(body, store, request)
    }
  }
  if (action === 'SendMessageBatch') {
    return async (body, store, request) => {
      const entries = (body.Entries ?? []) as SendEntry[]
      const refused = entries
        .map((entry) => ({ entry, problem: attributeProblem(entry.MessageAttributes) }))
        .filter((check) => check.problem !== undefined)
      if (refused.length === 0) return handler(body, store, request)
      const failed = refused.map(({ entry, problem }) => ({
        Id: entry.Id,
        SenderFault: true,
        Code: 'InvalidParameterValue',
        Message: problem,
      }))
      const rest = entries.filter((entry) => !refused.some((check) => check.entry === entry))
      if (rest.length === 0) return { Successful: [], Failed: failed }
      const result = (await handler({ ...body, Entries: rest }, store, request)) as {
        Successful?: unknown[]
        Failed?: unknown[]
      }
      return { Successful: result.Successful ?? [], Failed: [...(result.Failed ?? []), ...failed] }
    }
  }
  return handler
}

/**
 * SQS allows a message's visibility to reach 12 hours past its *receive* and refuses a change
 * beyond ("It will not automatically recalculate and increase the timeout to the maximum time
 * remaining"); fauxqs allows 12 hours from each call.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
 */
const MAX_VISIBILITY_MS = 43_200_000

interface InflightEntry {
  receivedAt?: number
}
interface FauxQueue {
  inflightMessages: Map<string, InflightEntry>
  dequeue: (...args: unknown[]) => unknown
}
interface VisibilityEntry {
  readonly Id?: string
  readonly ReceiptHandle?: string
  readonly VisibilityTimeout?: number
}

/** Whether SQS would refuse this change: it reaches past 12 hours from the message's receive. */
const beyondReceive = (queue: FauxQueue | undefined, entry: VisibilityEntry): boolean => {
  const receivedAt = queue?.inflightMessages.get(entry.ReceiptHandle ?? '')?.receivedAt
  const seconds = Number(entry.VisibilityTimeout)
  return (
    receivedAt !== undefined &&
    Number.isFinite(seconds) &&
    Date.now() + seconds * 1000 > receivedAt + MAX_VISIBILITY_MS
  )
}

const beyondMessage = (seconds: unknown) =>
  `Value ${String(seconds)} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds]`

/** ChangeMessageVisibility refuses the call; the batch fails just the entries past the limit. */
const checkingVisibility = (action: string, handler: Handler, SqsError: SqsErrorClass): Handler => {
  const queueOf = (body: Record<string, unknown>, store: unknown) =>
    (store as { getQueue: (url: unknown) => FauxQueue | undefined }).getQueue(body.QueueUrl)
  if (action === 'ChangeMessageVisibility') {
    return (body, store, request) => {
      if (beyondReceive(queueOf(body, store), body as VisibilityEntry)) {
        throw new SqsError('InvalidParameterValue', beyondMessage(body.VisibilityTimeout))
      }
      return handler(body, store, request)
    }
  }
  if (action === 'ChangeMessageVisibilityBatch') {
    return async (body, store, request) => {
      const queue = queueOf(body, store)
      const entries = (body.Entries ?? []) as VisibilityEntry[]
      const refused = entries.filter((entry) => beyondReceive(queue, entry))
      if (refused.length === 0) return handler(body, store, request)
      const failed = refused.map((entry) => ({
        Id: entry.Id,
        SenderFault: true,
        Code: 'InvalidParameterValue',
        Message: beyondMessage(entry.VisibilityTimeout),
      }))
      const rest = entries.filter((entry) => !refused.includes(entry))
      if (rest.length === 0) return { Successful: [], Failed: failed }
      const result = (await handler({ ...body, Entries: rest }, store, request)) as {
        Successful?: unknown[]
        Failed?: unknown[]
      }
      return { Successful: result.Successful ?? [], Failed: [...(result.Failed ?? []), ...failed] }
    }
  }
  return handler
}

let emulatorAligned: Promise<void> | undefined

/**
 * Brings fauxqs 2.4 in line with SQS where it is kinder than SQS (tests must not pass only
 * because the emulator accepts what AWS refuses), and where it is stricter:
 * - it checks bodies per UTF-16 unit, so it refuses every character outside the Basic
 *   Multilingual Plane (emoji), which SQS accepts: its check is replaced by SQS's rule;
 * - it lets ChangeMessageVisibility reach 12 hours past each call, not past the receive: each
 *   in-flight message is stamped with its receive time and changes beyond it are refused;
 * - it does not check message attribute values at all: SendMessage and SendMessageBatch are
 *   wrapped to refuse what SQS refuses there.
 */
const alignEmulatorWithSqs = () => {
  const internal = (path: string) => import(new URL(path, import.meta.resolve('fauxqs')).href)
  emulatorAligned ??= Promise.all([
    internal('./sqs/sqsTypes.js'),
    internal('./sqs/sqsStore.js'),
    internal('./sqs/sqsRouter.js'),
    internal('./common/errors.js'),
  ]).then(([types, store, router, errors]) => {
    const { SqsQueue } = store as { SqsQueue: { prototype: FauxQueue } }
    const dequeue = SqsQueue.prototype.dequeue
    SqsQueue.prototype.dequeue = function (this: FauxQueue, ...args: unknown[]) {
      const received = dequeue.apply(this, args)
      const now = Date.now()
      for (const entry of this.inflightMessages.values()) entry.receivedAt ??= now
      return received
    }
    const check = (types as { INVALID_MESSAGE_BODY_CHAR?: RegExp }).INVALID_MESSAGE_BODY_CHAR
    if (check !== undefined) check.test = (body: string) => SQS_INVALID_CHAR.test(body)
    const { SqsRouter } = router as {
      SqsRouter: { prototype: { register: (action: string, handler: Handler) => void } }
    }
    const { SqsError } = errors as { SqsError: SqsErrorClass }
    const register = SqsRouter.prototype.register
    SqsRouter.prototype.register = function (action: string, handler: Handler) {
      const checked = checkingAttributes(action, handler, SqsError)
      register.call(this, action, checkingVisibility(action, checked, SqsError))
    }
  })
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
      ...(options.maxMessageBytes === undefined
        ? {}
        : { MaximumMessageSize: String(options.maxMessageBytes) }),
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: dlq.queueArn,
        maxReceiveCount: String(options.maxReceiveCount ?? QUEUE_SETTINGS.maxReceiveCount),
      }),
    },
  })
  // A standard queue, as deployed: the list sync coalesces by event time, not arrival order.
  const audiences = server.createQueue(`${name}-audiences`, {
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
    audienceQueueUrl: audiences.queueUrl,
    audienceQueueArn: audiences.queueArn,
    stop: () => server.stop(),
  }
}
