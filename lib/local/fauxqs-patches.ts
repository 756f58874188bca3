import { createHash, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Server } from 'node:net'
import { SQS_MAX_VISIBILITY_SECONDS } from '../config.ts'
import { isValidFifoId } from '../queue/message-group.ts'
import { isSqsText } from '../queue/sqs-message.ts'
import { LOOPBACK } from './loopback.ts'

/**
 * Every change this project makes to fauxqs, in one place. fauxqs is the in-process SQS of
 * `npm start` and the tests; where it is kinder than SQS, tests could pass only because the
 * emulator accepts what AWS refuses, so it is brought in line here, through its private modules
 * (dist/sqs/*.js) and one `Server.prototype.listen` call. Those are not its public API: the
 * package is pinned exactly (package.json), and before any patch applies, checkFauxqs compares
 * the installed version and a fingerprint of each patched internal with the ones these patches
 * were written against, and refuses to start, naming each difference, when they differ.
 *
 * Marked "fauxqs bug" below: where fauxqs departs from SQS's documented behaviour, worth fixing
 * upstream (https://github.com/kibertoad/fauxqs/issues); the rest are SQS rules fauxqs leaves out.
 */

/** The fauxqs version these patches were written against; package.json pins the same. */
export const FAUXQS_VERSION = '2.4.1'

/**
 * SHA-256 (first 16 hex) of the source text of each internal a patch relies on, in FAUXQS_VERSION.
 * A different fingerprint means the internal changed: re-read it against its patch below, then
 * update the fingerprint.
 */
export const FAUXQS_FINGERPRINTS: Readonly<Record<string, string>> = {
  'sqs/sqsStore.js SqsQueue.prototype.dequeue': '8e0f61800268bf50',
  'sqs/sqsStore.js SqsQueue.prototype.dequeueFifo': '2ca1ac1585bd47c8',
  'sqs/sqsStore.js SqsQueue.prototype.enqueue': '9c47a6bba1b0ff09',
  'sqs/sqsStore.js SqsQueue.prototype.processTimers': 'fa8e4b5fc6620dd1',
  'sqs/sqsStore.js SqsQueue.prototype.changeVisibility': '45fca8fdb3c106dd',
  'sqs/sqsTypes.js INVALID_MESSAGE_BODY_CHAR': 'df5332e389c04553',
  'sqs/sqsRouter.js SqsRouter.prototype.register': '601e41b50a3069d1',
  'common/errors.js SqsError': 'eb14e3ff56509fd3',
  'app.js listen': '4b27bc04e4c1731b',
}

const fingerprint = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16)

const FAUXQS_DIST = new URL('.', import.meta.resolve('fauxqs'))

/** fauxqs's private modules the patches change, loaded once. */
interface FauxqsInternals {
  readonly version: string
  readonly SqsQueue: { prototype: FauxQueue & FifoQueueInternals }
  readonly SqsRouter: { prototype: { register: (action: string, handler: Handler) => void } }
  readonly SqsError: SqsErrorClass
  readonly types: { INVALID_MESSAGE_BODY_CHAR: RegExp }
  /** The listen call in dist/app.js that onLoopback rebinds. */
  readonly listenCall: string
}

const loadInternals = async (): Promise<
  FauxqsInternals & { readonly fingerprints: Record<string, string> }
> => {
  const internal = (path: string) => import(new URL(path, FAUXQS_DIST).href)
  const [types, store, router, errors] = await Promise.all([
    internal('./sqs/sqsTypes.js'),
    internal('./sqs/sqsStore.js'),
    internal('./sqs/sqsRouter.js'),
    internal('./common/errors.js'),
  ])
  const app = readFileSync(new URL('./app.js', FAUXQS_DIST), 'utf8')
  const manifest = JSON.parse(readFileSync(new URL('../package.json', FAUXQS_DIST), 'utf8')) as {
    version: string
  }
  const internals: FauxqsInternals = {
    version: manifest.version,
    SqsQueue: store.SqsQueue,
    SqsRouter: router.SqsRouter,
    SqsError: errors.SqsError,
    types,
    listenCall: app.match(/app\.listen\([^)]*\)/)?.[0] ?? '(no app.listen call)',
  }
  // Taken at load, before any patch replaces what they measure.
  return { ...internals, fingerprints: fingerprintsOf(internals) }
}

let loaded: ReturnType<typeof loadInternals> | undefined
const internalsOnce = () => {
  loaded ??= loadInternals()
  return loaded
}

/** The installed fauxqs's version and the fingerprints of its patched internals, as shipped. */
export const installedFauxqs = async (): Promise<{
  version: string
  fingerprints: Record<string, string>
}> => {
  const { version, fingerprints } = await internalsOnce()
  return { version, fingerprints }
}

/** The fingerprint of each patched internal (to be taken before any patch applies). */
const fingerprintsOf = (internals: FauxqsInternals): Record<string, string> => {
  const queue = internals.SqsQueue.prototype
  const source = (value: unknown) => (typeof value === 'function' ? value.toString() : String(value))
  return {
    'sqs/sqsStore.js SqsQueue.prototype.dequeue': fingerprint(source(queue.dequeue)),
    'sqs/sqsStore.js SqsQueue.prototype.dequeueFifo': fingerprint(source(queue.dequeueFifo)),
    'sqs/sqsStore.js SqsQueue.prototype.enqueue': fingerprint(source(queue.enqueue)),
    'sqs/sqsStore.js SqsQueue.prototype.processTimers': fingerprint(source(queue.processTimers)),
    'sqs/sqsStore.js SqsQueue.prototype.changeVisibility': fingerprint(source(queue.changeVisibility)),
    'sqs/sqsTypes.js INVALID_MESSAGE_BODY_CHAR': fingerprint(
      source(internals.types.INVALID_MESSAGE_BODY_CHAR),
    ),
    'sqs/sqsRouter.js SqsRouter.prototype.register': fingerprint(
      source(internals.SqsRouter.prototype.register),
    ),
    'common/errors.js SqsError': fingerprint(source(internals.SqsError)),
    'app.js listen': fingerprint(internals.listenCall),
  }
}

/** Pure: each way `installed` differs from what the patches were written against, one line each. */
export const fauxqsDifferences = (
  installed: { readonly version: string; readonly fingerprints: Readonly<Record<string, string>> },
  expected: { readonly version: string; readonly fingerprints: Readonly<Record<string, string>> } = {
    version: FAUXQS_VERSION,
    fingerprints: FAUXQS_FINGERPRINTS,
  },
): string[] => [
  ...(installed.version === expected.version
    ? []
    : [`fauxqs is ${installed.version}, the patches were written against ${expected.version}`]),
  ...Object.entries(expected.fingerprints).flatMap(([name, want]) => {
    const got = installed.fingerprints[name]
    return got === want ? [] : [`${name} changed (fingerprint ${got ?? 'missing'}, expected ${want})`]
  }),
]

/** Throws, naming every difference, when the installed fauxqs is not the one the patches fit. */
const checkFauxqs = (installed: { version: string; fingerprints: Record<string, string> }): void => {
  const differences = fauxqsDifferences(installed)
  if (differences.length > 0) {
    throw new Error(
      `lib/local/fauxqs-patches.ts no longer fits the installed fauxqs; re-read each patch against it:\n${differences.map((line) => `  - ${line}`).join('\n')}`,
    )
  }
}

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
    if (!isSqsText(text)) {
      return `Message attribute '${name}' contains invalid characters. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.`
    }
  }
  return undefined
}

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
    if (id !== undefined && !isValidFifoId(id)) {
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

/** SQS's 12 hours past the receive (SQS_MAX_VISIBILITY_SECONDS), in ms. */
const MAX_VISIBILITY_MS = SQS_MAX_VISIBILITY_SECONDS * 1_000

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
  `Value ${String(seconds)} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [${SQS_MAX_VISIBILITY_SECONDS} seconds]`

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

let starting: Promise<unknown> = Promise.resolve()

/**
 * fauxqs bug: it listens on 0.0.0.0 whatever it is given (dist/app.js: `app.listen({ port, host:
 * "0.0.0.0" })`; its `host` option only names the host in queue URLs), exposing the queues to the
 * network. The one listen call it makes is bound to loopback instead; starts are serialised so
 * the substitution is only ever in place for one start, and `listen` is restored before the next.
 */
export const onLoopback = <T>(start: () => Promise<T>): Promise<T> => {
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
 * Where fauxqs's FIFO queues are kinder or stricter than SQS, they are brought in line:
 *
 * - fauxqs bug: a receive takes **one** message per group, where SQS "returns as many messages
 *   with the same message group ID as possible" (up to MaxNumberOfMessages), so Lambda's batches hold several
 *   records of one user; with one message per receive the in-batch order rule would never be
 *   exercised locally and a busy user would look ten times slower than on AWS.
 *   https://repost.aws/knowledge-center/sqs-fifo-messages-not-returned
 * - Messages that come back (visibility expired or set to 0) are put back at the head of their
 *   group one by one, which reverses several of one group (fauxqs bug): they are put back in
 *   sending order.
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

const alignFifoWithSqs = (queue: FifoQueueInternals) => {
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

let aligned: Promise<void> | undefined

/**
 * Checks the installed fauxqs (checkFauxqs), then brings it in line with SQS, once per process:
 * - fauxqs bug: it checks bodies per UTF-16 unit (INVALID_MESSAGE_BODY_CHAR has no `u` flag and
 *   no #x10000-#x10FFFF range), so it refuses every character outside the Basic Multilingual Plane
 *   (emoji), which SQS accepts: its check is replaced by the relay's own rule (isSqsText);
 * - fauxqs bug: it lets ChangeMessageVisibility reach 12 hours past each call, not past the
 *   receive: each in-flight message is stamped with its receive time and changes beyond are refused;
 * - it checks neither message attribute values nor FIFO ids: SendMessage and SendMessageBatch are
 *   wrapped to refuse what SQS refuses there, by the relay's own rules;
 * - its FIFO queues: see alignFifoWithSqs.
 */
export const alignFauxqsWithSqs = (): Promise<void> => {
  aligned ??= internalsOnce().then((internals) => {
    checkFauxqs(internals)
    const queue = internals.SqsQueue.prototype
    const dequeue = queue.dequeue
    queue.dequeue = function (this: FauxQueue, ...args: unknown[]) {
      const received = dequeue.apply(this, args)
      const now = Date.now()
      for (const entry of this.inflightMessages.values()) entry.receivedAt ??= now
      return received
    }
    internals.types.INVALID_MESSAGE_BODY_CHAR.test = (body: string) => !isSqsText(body)
    const { SqsError } = internals
    const register = internals.SqsRouter.prototype.register
    internals.SqsRouter.prototype.register = function (action: string, handler: Handler) {
      const checked = checkingAttributes(action, handler, SqsError)
      register.call(this, action, checkingVisibility(action, checked, SqsError))
    }
    alignFifoWithSqs(queue)
  })
  return aligned
}
