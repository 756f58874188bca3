import { randomUUID } from 'node:crypto'
import { Server } from 'node:net'
import { type FauxqsServer, startFauxqs } from 'fauxqs'
import type { QueueType } from '../config.ts'
import { FIFO_ATTRIBUTES, QUEUE_SETTINGS } from '../queue/settings.ts'
import { LOOPBACK } from './loopback.ts'

export type { QueueType }

/**
 * The embedded SQS for `npm start` and the tests: fauxqs in process, speaking the real SQS
 * JSON protocol, with the events queue redriving to its DLQ as the deployed queue does. FIFO by
 * default, with the deployed queues' attributes (high-throughput mode); `queueType: 'standard'`
 * gives the standard pair.
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
  readonly MessageGroupId?: string
  readonly MessageDeduplicationId?: string
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
 * SQS's rule for MessageGroupId and MessageDeduplicationId, which fauxqs does not check: 1-128
 * characters, alphanumeric and punctuation (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~).
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
 */
const SQS_FIFO_ID = /^[\x21-\x7E]{1,128}$/

/**
 * A batch call as SQS answers it when some entries are invalid: those fail alone with
 * SenderFault and `InvalidParameterValue`, the others go through.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_BatchResultErrorEntry.html
 */
const batchRefusing = async <Entry extends { readonly Id?: unknown }>(
  handler: Handler,
  body: Parameters<Handler>[0],
  store: Parameters<Handler>[1],
  request: Parameters<Handler>[2],
  entries: readonly Entry[],
  problemOf: (entry: Entry) => string | undefined,
): Promise<unknown> => {
  const refused = entries.flatMap((entry) => {
    const problem = problemOf(entry)
    return problem === undefined ? [] : [{ entry, problem }]
  })
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

/** Why SQS would refuse this entry (its attributes or its FIFO ids), or undefined. */
const entryProblem = (entry: SendEntry): string | undefined => {
  for (const name of ['MessageGroupId', 'MessageDeduplicationId'] as const) {
    const id = entry[name]
    if (id !== undefined && !SQS_FIFO_ID.test(id)) {
      return `Value ${id} for parameter ${name} is invalid. Reason: ${name} can only include alphanumeric and punctuation characters. 1 to 128 in length.`
    }
  }
  return attributeProblem(entry.MessageAttributes)
}

/**
 * SendMessage refuses the call; SendMessageBatch fails just that entry with SenderFault, and
 * the other entries go through, as SQS answers a batch.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
 */
const checkingAttributes = (action: string, handler: Handler, SqsError: SqsErrorClass): Handler => {
  if (action === 'SendMessage') {
    return (body, store, request) => {
      const problem = entryProblem(body as SendEntry)
      if (problem !== undefined) throw new SqsError('InvalidParameterValue', problem)
      return handler(body, store, request)
    }
  }
  if (action === 'SendMessageBatch') {
    return async (body, store, request) => {
      const entries = (body.Entries ?? []) as SendEntry[]
      return batchRefusing(handler, body, store, request, entries, entryProblem)
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
      return batchRefusing(handler, body, store, request, entries, (entry) =>
        beyondReceive(queue, entry) ? beyondMessage(entry.VisibilityTimeout) : undefined,
      )
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
  ])
    .then(([types, store, router, errors]) => {
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
    .then(alignFifoWithSqs)
  return emulatorAligned
}

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

/**
 * Where fauxqs 2.4's FIFO queues are kinder or stricter than SQS, they are brought in line:
 *
 * - A receive takes **one** message per group, where SQS "returns as many messages with the same
 *   message group ID as possible" (up to MaxNumberOfMessages), so Lambda's batches hold several
 *   records of one user; with one message per receive the in-batch order rule would never be
 *   exercised locally and a busy user would look ten times slower than on AWS.
 *   https://repost.aws/knowledge-center/sqs-fifo-messages-not-returned
 * - Messages that come back (visibility expired or set to 0) are put back at the head of their
 *   group one by one, which reverses several of one group: they are put back in sending order.
 * - Any MessageGroupId and MessageDeduplicationId is taken: checkingAttributes above refuses
 *   what SQS refuses.
 *
 * Everything else (a group stays blocked while any of its messages is in flight, also one whose
 * visibility was changed; the 5-minute deduplication window; no per-message DelaySeconds) is
 * fauxqs's own. Known difference left: fauxqs deduplicates per queue, not per message group.
 */
const ARRIVAL = Symbol('arrival')
let arrivals = 0

interface FifoMessage {
  messageId: string
  body: string
  md5OfBody: string
  md5OfMessageAttributes?: string
  messageAttributes: Record<string, unknown>
  approximateReceiveCount: number
  approximateFirstReceiveTimestamp?: number
  messageGroupId?: string
  [ARRIVAL]?: number
}
interface FifoQueueInternals {
  attributes: Record<string, string>
  fifoMessages: Map<string, FifoMessage[]>
  fifoLockedGroups: Map<string, number>
  inflightMessages: Map<string, { message: FifoMessage; receiptHandle: string; visibilityDeadline: number }>
  spy?: { addMessage: (entry: Record<string, unknown>) => void }
  persistence?: {
    deleteMessage: (id: string) => void
    updateMessageInflight: (...args: unknown[]) => void
  }
  isFifo(): boolean
  processTimers(): void
  enqueue(message: FifoMessage): void
  changeVisibility(handle: string, seconds: number): void
  dequeueFifo(
    max: number,
    visibility: number | undefined,
    dlq?: (arn: string) => FifoQueueInternals | undefined,
  ): unknown[]
}

const arrivalOf = (message: FifoMessage) => message[ARRIVAL] ?? 0

/** Puts each group's messages back in the order they reached the queue. */
const restoreGroupOrder = (queue: FifoQueueInternals) => {
  for (const messages of queue.fifoMessages.values()) {
    let sorted = true
    for (let i = 1; i < messages.length && sorted; i++)
      sorted = arrivalOf(messages[i - 1] as FifoMessage) <= arrivalOf(messages[i] as FifoMessage)
    if (!sorted) messages.sort((a, b) => arrivalOf(a) - arrivalOf(b))
  }
}

function dequeueFifo(
  this: FifoQueueInternals,
  maxCount: number,
  visibilityTimeoutOverride: number | undefined,
  dlqResolver?: (arn: string) => FifoQueueInternals | undefined,
) {
  this.processTimers()
  const visibilityTimeout =
    visibilityTimeoutOverride ?? Number.parseInt(this.attributes.VisibilityTimeout ?? '30', 10)
  let maxReceiveCount = Number.POSITIVE_INFINITY
  let dlqArn: string | undefined
  if (this.attributes.RedrivePolicy) {
    try {
      const policy = JSON.parse(this.attributes.RedrivePolicy) as {
        maxReceiveCount?: number
        deadLetterTargetArn?: string
      }
      maxReceiveCount = Number(policy.maxReceiveCount ?? Number.POSITIVE_INFINITY)
      dlqArn = policy.deadLetterTargetArn
    } catch {
      // An invalid policy is ignored, as fauxqs does.
    }
  }
  const result: Record<string, unknown>[] = []
  const count = Math.min(maxCount, 10)
  for (const [groupId, messages] of this.fifoMessages) {
    if (result.length >= count) break
    if (this.fifoLockedGroups.has(groupId) || messages.length === 0) continue
    // As many of this group as fit, in order: the group is locked while any is in flight.
    while (result.length < count && messages.length > 0) {
      const message = messages.shift() as FifoMessage
      message.approximateReceiveCount++
      message.approximateFirstReceiveTimestamp ??= Date.now()
      if (dlqArn && dlqResolver && message.approximateReceiveCount > maxReceiveCount) {
        const dlq = dlqResolver(dlqArn)
        if (dlq) {
          this.persistence?.deleteMessage(message.messageId)
          dlq.enqueue(message)
          continue
        }
      }
      const receiptHandle = randomUUID()
      const visibilityDeadline = Date.now() + visibilityTimeout * 1000
      this.inflightMessages.set(receiptHandle, { message, receiptHandle, visibilityDeadline })
      const received: Record<string, unknown> = {
        MessageId: message.messageId,
        ReceiptHandle: receiptHandle,
        MD5OfBody: message.md5OfBody,
        Body: message.body,
      }
      if (message.md5OfMessageAttributes) received.MD5OfMessageAttributes = message.md5OfMessageAttributes
      if (Object.keys(message.messageAttributes).length > 0)
        received.MessageAttributes = message.messageAttributes
      result.push(received)
      this.fifoLockedGroups.set(groupId, (this.fifoLockedGroups.get(groupId) ?? 0) + 1)
    }
    if (messages.length === 0) this.fifoMessages.delete(groupId)
  }
  return result
}

const alignFifoWithSqs = async () => {
  const base = import.meta.resolve('fauxqs')
  const store = (await import(new URL('./sqs/sqsStore.js', base).href)) as {
    SqsQueue: { prototype: FifoQueueInternals }
    SqsStore: { createMessage: (...args: unknown[]) => FifoMessage }
  }
  const queue = store.SqsQueue.prototype
  queue.dequeueFifo = dequeueFifo
  const { enqueue, processTimers, changeVisibility } = queue
  queue.enqueue = function (this: FifoQueueInternals, message: FifoMessage) {
    message[ARRIVAL] = ++arrivals
    enqueue.call(this, message)
  }
  queue.processTimers = function (this: FifoQueueInternals) {
    const inFlight = this.inflightMessages.size
    processTimers.call(this)
    if (this.isFifo() && this.inflightMessages.size < inFlight) restoreGroupOrder(this)
  }
  queue.changeVisibility = function (this: FifoQueueInternals, handle: string, seconds: number) {
    changeVisibility.call(this, handle, seconds)
    if (this.isFifo() && seconds === 0) restoreGroupOrder(this)
  }
}

export const startLocalQueues = async (options: LocalQueueOptions = {}): Promise<LocalQueues> => {
  await alignEmulatorWithSqs()
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
