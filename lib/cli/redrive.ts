import { createHash } from 'node:crypto'
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ListDeadLetterSourceQueuesCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs'
import { packInWaves } from '../queue/batch-pack.ts'
import { fifoId, messageGroupId } from '../queue/message-group.ts'
import { fifoFields, isFifoQueueUrl, messageSize } from '../queue/sqs-message.ts'
import { parseFlags, runCli, usageExit } from './args.ts'
import { type CliIo, sqsClientFor } from './dlq.ts'
import { type CliTarget, cliTarget, TARGET_FLAGS, UsageError } from './target.ts'

/**
 * `npm run redrive -- [--local | --dlq-url <url> [--queue-url <url>]]`: moves dead-lettered
 * events back to the events queue once whatever refused them is fixed.
 *
 * On AWS it starts an SQS message move task (StartMessageMoveTask): SQS moves the messages
 * itself, asynchronously, body and attributes unchanged.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html
 *
 * Emulators (fauxqs) have no move tasks, so against them the messages are moved here, as the move
 * task moves them: the body goes back byte-for-byte with every attribute, the dead-letter ones
 * (stage, reason, status, …) included, so an event that fails again carries its earlier reasons
 * into its new dead letter (`history`, lib/queue/dead-letter.ts) instead of losing them.
 * A message leaves the DLQ only after the events queue has taken it: whatever SQS refuses stays,
 * made visible again at the end. Two kinds are left on purpose: truncated dead letters (their
 * body is only the head of an event too large to keep, so replaying it cannot succeed) and a
 * body already moved in this run (a duplicate, or an event that failed again at once: without
 * this a redrive against a still-broken Courier would go round forever). Each message is moved
 * at most once per run.
 *
 * FIFO queues: SQS hands a DLQ's messages out in order within each message group (user), and
 * the move keeps it: each message goes back with its MessageGroupId, in the order received, a
 * user's later message never ahead of an earlier one that could not be moved, and with a fresh
 * MessageDeduplicationId (from its DLQ message id), so the events queue does not drop it as a
 * repeat of the event it was 5 minutes ago. SQS's own move task redrives FIFO DLQs in order too.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html
 */

export type RedriveMode = 'aws' | 'local' | 'auto'

export interface RedriveOptions {
  readonly dlqUrl: string
  /** The events queue. Default: the DLQ's source queue (ListDeadLetterSourceQueues, else the naming convention). */
  readonly queueUrl?: string | undefined
  /** 'aws': a move task; 'local': move here; 'auto': a move task, or move here where SQS has none. */
  readonly mode: RedriveMode
  readonly log?: (line: string) => void
  /** How long a message being moved is hidden from other receivers (local moves). */
  readonly hideSeconds?: number
  /** Long-poll wait of each receive (local moves); the final, empty receive waits this long. */
  readonly waitSeconds?: number
}

export interface MoveTaskResult {
  readonly mode: 'aws'
  readonly taskHandle: string
  readonly sourceArn: string
  readonly destinationArn: string
}

export interface LocalMoveResult {
  readonly mode: 'local'
  readonly queueUrl: string
  /** On the events queue now. */
  readonly moved: number
  /** Refused by the events queue: still in the DLQ. */
  readonly failed: number
  /** Truncated dead letters: still in the DLQ. */
  readonly truncated: number
  /** Body already moved in this run: still in the DLQ. */
  readonly repeated: number
  /** Moved, but the DLQ copy could not be deleted: now in both (harmless: Courier dedupes on messageId). */
  readonly notDeleted: number
  /** FIFO: later events of a user with an event left in the DLQ: still in the DLQ, in order. */
  readonly behind: number
  /** StartMessageMoveTask was tried and is not supported here. */
  readonly fellBack: boolean
  /** Why the move stopped early (a whole call failed), if it did. */
  readonly error: string | undefined
}

export type RedriveResult = MoveTaskResult | LocalMoveResult

/**
 * Pure: the attributes a redriven message carries, as SendMessage takes them: all of them, as
 * SQS's message move task keeps them (the dead-letter ones become the event's history when it
 * fails again).
 */
export const redriveAttributes = (
  attributes: Readonly<Record<string, MessageAttributeValue>> | undefined,
): Record<string, MessageAttributeValue> => {
  const kept: Record<string, MessageAttributeValue> = {}
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value.DataType === undefined) continue
    kept[name] = {
      DataType: value.DataType,
      ...(value.StringValue !== undefined ? { StringValue: value.StringValue } : {}),
      ...(value.BinaryValue !== undefined ? { BinaryValue: value.BinaryValue } : {}),
    }
  }
  return kept
}

/** Errors by which an SQS-compatible server says it has no such operation (fauxqs: InvalidAction). */
const UNSUPPORTED = new Set([
  'InvalidAction',
  'UnsupportedOperation',
  'AWS.SimpleQueueService.UnsupportedOperation',
  'UnknownOperationException',
  'NotImplemented',
])

export const isUnsupportedOperation = (error: unknown): boolean => {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } } | null
  return UNSUPPORTED.has(e?.name ?? '') || e?.$metadata?.httpStatusCode === 501
}

/**
 * Pure: the events queue by this project's naming, for servers without ListDeadLetterSourceQueues:
 * `…-events-dlq` (npm start) and `…-dlq` (deployed, next to `…-events`) both give `…-events`.
 */
export const conventionalQueueUrl = (dlqUrl: string): string | undefined => {
  const match = /^(.*\/)([^/]+)-dlq(\.fifo)?$/.exec(dlqUrl)
  if (!match) return undefined
  const [, prefix = '', base = '', fifo = ''] = match
  return `${prefix}${base.endsWith('-events') ? base : `${base}-events`}${fifo}`
}

const queueArn = async (sqs: SQSClient, url: string): Promise<string> => {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  )
  if (!Attributes?.QueueArn) throw new Error(`SQS gave no QueueArn for ${url}`)
  return Attributes.QueueArn
}

/**
 * The queue whose RedrivePolicy names this DLQ, when SQS can say: the only one, or, when several
 * do (the events queue and the audience queue), the events queue by this project's naming. Every
 * dead letter goes back through the events queue: an audience event redriven there is delivered
 * and handed to the audience list sync again.
 */
const sourceQueueOf = async (sqs: SQSClient, dlqUrl: string): Promise<string | undefined> => {
  try {
    const result = await sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlqUrl }))
    const urls = result.queueUrls ?? []
    return urls.length === 1 ? urls[0] : urls.find((url) => url === conventionalQueueUrl(dlqUrl))
  } catch {
    // Not allowed, or not implemented (emulators): the caller falls back.
    return undefined
  }
}

/** Where the events go back to. */
const destinationFor = async (sqs: SQSClient, dlqUrl: string, queueUrl: string | undefined) => {
  const destination = queueUrl ?? (await sourceQueueOf(sqs, dlqUrl)) ?? conventionalQueueUrl(dlqUrl)
  if (destination === undefined) {
    throw new UsageError(`cannot tell which queue ${dlqUrl} is the DLQ of: give --queue-url`)
  }
  if (destination === dlqUrl) throw new UsageError('the destination queue is the DLQ itself')
  return destination
}

/**
 * Starts an SQS message move task out of the DLQ, always naming the destination (--queue-url, the
 * one queue whose RedrivePolicy names the DLQ, or this project's naming): without DestinationArn
 * SQS sends each message back to its "original source queue", and most of this relay's dead
 * letters were written to the DLQ by the functions, not moved there by SQS, so they have none.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html
 */
export const startMoveTaskDetailed = async (
  sqs: SQSClient,
  dlqUrl: string,
  queueUrl?: string | undefined,
): Promise<MoveTaskResult> => {
  const destinationUrl = await destinationFor(sqs, dlqUrl, queueUrl)
  const sourceArn = await queueArn(sqs, dlqUrl)
  const destinationArn = await queueArn(sqs, destinationUrl)
  const { TaskHandle } = await sqs.send(
    new StartMessageMoveTaskCommand({ SourceArn: sourceArn, DestinationArn: destinationArn }),
  )
  if (!TaskHandle) throw new Error('SQS started no move task (no TaskHandle in its answer)')
  return { mode: 'aws', taskHandle: TaskHandle, sourceArn, destinationArn }
}

/** The move task's handle. */
export const startMoveTask = async (
  sqs: SQSClient,
  dlqUrl: string,
  queueUrl?: string | undefined,
): Promise<string> => (await startMoveTaskDetailed(sqs, dlqUrl, queueUrl)).taskHandle

interface Candidate {
  readonly message: Message
  readonly hash: string
  readonly size: number
  readonly attributes: Record<string, MessageAttributeValue>
  /** The user's message group: the DLQ's own on a FIFO queue, else worked out from the body. */
  readonly group: string
}

const groupOfMessage = (message: Message): string => {
  const given = message.Attributes?.MessageGroupId
  if (given) return given
  const body = message.Body ?? ''
  try {
    return messageGroupId(JSON.parse(body), body)
  } catch {
    return `sqs:${message.MessageId ?? body}`
  }
}

const bodyHash = (body: string) => createHash('sha256').update(body, 'utf8').digest('base64')

/**
 * A batch payload every SQS-compatible server takes (AWS raised its cap from 256 KiB to 1 MiB in
 * 2025; emulators and older endpoints may not have). A larger message is sent in a batch of its own.
 */
const BATCH_BYTES = 262_144
const BATCH = 10

const sizeOf = (body: string, attributes: Record<string, MessageAttributeValue>) =>
  messageSize(
    body,
    Object.fromEntries(Object.entries(attributes).map(([name, value]) => [name, value.StringValue ?? ''])),
  )

/** Batches in an order that keeps each group's order (they are sent one after the other). */
const batchesOf = (candidates: readonly Candidate[]): Candidate[][] => {
  // A message larger than any batch budget goes alone, in its place.
  const sized = candidates.map((c) => ({ c, size: Math.min(c.size, BATCH_BYTES), group: c.group }))
  return packInWaves(sized, BATCH_BYTES)
    .flat()
    .map((batch) => batch.map((entry) => entry.c))
}

/** Moves every DLQ message to the events queue itself, deleting each only once the queue has it. */
export const moveLocally = async (
  sqs: SQSClient,
  options: { dlqUrl: string; queueUrl: string; hideSeconds?: number; waitSeconds?: number },
): Promise<Omit<LocalMoveResult, 'fellBack'>> => {
  const { dlqUrl, queueUrl, hideSeconds = 60, waitSeconds = 1 } = options
  let moved = 0
  let failed = 0
  let truncated = 0
  let repeated = 0
  let notDeleted = 0
  let behind = 0
  let error: string | undefined
  const movedBodies = new Set<string>()
  const fifo = isFifoQueueUrl(queueUrl)
  // Groups with a message left behind in this run: their later messages stay too, in order.
  const held = new Set<string>()
  // Messages left in the DLQ, by SQS id, with their latest receipt handle: made visible at the end.
  const left = new Map<string, string>()
  const leave = (message: Message) => {
    if (message.MessageId && message.ReceiptHandle) left.set(message.MessageId, message.ReceiptHandle)
  }
  try {
    while (error === undefined) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: dlqUrl,
          MaxNumberOfMessages: BATCH,
          VisibilityTimeout: hideSeconds,
          WaitTimeSeconds: waitSeconds,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['MessageGroupId', 'SequenceNumber'],
        }),
      )
      if (Messages.length === 0) break
      const candidates: Candidate[] = []
      for (const message of Messages) {
        const body = message.Body ?? ''
        const hash = bodyHash(body)
        const group = groupOfMessage(message)
        if (message.MessageId && left.has(message.MessageId)) {
          // Seen already and left on purpose; it came back after hideSeconds. Not counted twice.
          leave(message)
        } else if (fifo && held.has(group)) {
          // Behind a message of its user that stays: moving it would put it ahead of that one.
          behind++
          leave(message)
        } else if (message.MessageAttributes?.truncated?.StringValue === 'true') {
          truncated++
          held.add(group)
          leave(message)
        } else if (movedBodies.has(hash)) {
          repeated++
          held.add(group)
          leave(message)
        } else {
          const attributes = redriveAttributes(message.MessageAttributes)
          candidates.push({ message, hash, attributes, size: sizeOf(body, attributes), group })
        }
      }
      for (const batch of batchesOf(candidates)) {
        let sent: Candidate[] = []
        try {
          const result = await sqs.send(
            new SendMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: batch.map((c, index) => ({
                Id: String(index),
                MessageBody: c.message.Body ?? '',
                MessageAttributes: c.attributes,
                ...fifoFields(
                  { group: c.group, deduplicationId: fifoId('redrive', c.message.MessageId ?? c.hash) },
                  fifo,
                ),
              })),
            }),
          )
          const ok = new Set((result.Successful ?? []).map((entry) => entry.Id))
          sent = batch.filter((_, index) => ok.has(String(index)))
        } catch (sendError) {
          // A whole call failing (no such queue, no permission, network) will not mend itself
          // on the next batch: stop, keep everything, say why.
          error = (sendError as Error).message || String(sendError)
        }
        for (const c of batch) {
          if (sent.includes(c)) continue
          leave(c.message)
          held.add(c.group)
        }
        failed += batch.length - sent.length
        moved += sent.length
        for (const c of sent) movedBodies.add(c.hash)
        notDeleted += await deleteFromDlq(sqs, dlqUrl, sent, leave)
        if (error !== undefined) break
      }
    }
  } finally {
    await makeVisible(sqs, dlqUrl, [...left.values()])
  }
  return { mode: 'local', queueUrl, moved, failed, truncated, repeated, notDeleted, behind, error }
}

/** Deletes moved messages from the DLQ; returns how many could not be (they stay, now duplicated). */
const deleteFromDlq = async (
  sqs: SQSClient,
  dlqUrl: string,
  sent: readonly Candidate[],
  leave: (message: Message) => void,
): Promise<number> => {
  if (sent.length === 0) return 0
  try {
    const result = await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: dlqUrl,
        Entries: sent.map((c, index) => ({
          Id: String(index),
          ReceiptHandle: c.message.ReceiptHandle ?? '',
        })),
      }),
    )
    for (const entry of result.Failed ?? []) {
      const c = sent[Number(entry.Id)]
      if (c) leave(c.message)
    }
    return result.Failed?.length ?? 0
  } catch {
    for (const c of sent) leave(c.message)
    return sent.length
  }
}

const makeVisible = async (sqs: SQSClient, dlqUrl: string, handles: readonly string[]) => {
  for (let i = 0; i < handles.length; i += BATCH) {
    const entries = handles
      .slice(i, i + BATCH)
      .map((handle, index) => ({ Id: String(index), ReceiptHandle: handle, VisibilityTimeout: 0 }))
    // Best effort: a message not made visible here reappears by itself after hideSeconds.
    await sqs
      .send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: dlqUrl, Entries: entries }))
      .catch(() => undefined)
  }
}

/** The first version's shape: `failed` counts everything still in the DLQ. */
export const moveMessages = async (
  sqs: SQSClient,
  dlqUrl: string,
  queueUrl: string,
): Promise<{ moved: number; failed: number }> => {
  const result = await moveLocally(sqs, { dlqUrl, queueUrl })
  return { moved: result.moved, failed: stillInDlq(result) }
}

/** Pure: how many messages a local move left in the DLQ. */
export const stillInDlq = (result: Omit<LocalMoveResult, 'fellBack'>): number =>
  result.failed + result.truncated + result.repeated + result.notDeleted + result.behind

export const redrive = async (sqs: SQSClient, options: RedriveOptions): Promise<RedriveResult> => {
  const log = options.log ?? (() => undefined)
  const local = async (fellBack: boolean): Promise<LocalMoveResult> => {
    const queueUrl = await destinationFor(sqs, options.dlqUrl, options.queueUrl)
    const result = await moveLocally(sqs, { ...options, queueUrl })
    return { ...result, fellBack }
  }
  if (options.mode === 'local') return local(false)
  try {
    return await startMoveTaskDetailed(sqs, options.dlqUrl, options.queueUrl)
  } catch (error) {
    if (options.mode === 'aws' || !isUnsupportedOperation(error)) throw error
    log(
      `this SQS has no StartMessageMoveTask (${(error as Error).name}); moving the messages one batch at a time instead`,
    )
    return local(true)
  }
}

/** Pure: what a person reads after a redrive. */
export const describeRedrive = (result: RedriveResult, region?: string): string[] => {
  if (result.mode === 'aws') {
    const regionFlag = region ? ` --region ${region}` : ''
    return [
      `started SQS message move task ${result.taskHandle}`,
      `  from ${result.sourceArn}`,
      `  to   ${result.destinationArn}`,
      'SQS moves the messages in the background. Watch it with:',
      `  aws sqs list-message-move-tasks --source-arn ${result.sourceArn}${regionFlag}`,
      'Cancel it with:',
      `  aws sqs cancel-message-move-task --task-handle '${result.taskHandle}'${regionFlag}`,
    ]
  }
  const lines = [`moved ${result.moved} event(s) from the DLQ back to ${result.queueUrl}`]
  if (result.failed) lines.push(`${result.failed} refused by the events queue: still in the DLQ, run again`)
  if (result.truncated) {
    lines.push(
      `${result.truncated} truncated (too large to keep whole): still in the DLQ, cannot be replayed`,
    )
  }
  if (result.repeated) {
    lines.push(
      `${result.repeated} already moved once in this run (a duplicate, or it failed again at once): still in the DLQ`,
    )
  }
  if (result.notDeleted) {
    lines.push(
      `${result.notDeleted} moved but not deleted from the DLQ (harmless duplicate: Courier dedupes)`,
    )
  }
  if (result.behind) {
    lines.push(
      `${result.behind} left behind an earlier event of the same user that stayed (FIFO order): still in the DLQ`,
    )
  }
  if (result.error) lines.push(`stopped early: ${result.error}`)
  return lines
}

export const USAGE = `usage: npm run redrive -- [--local | --dlq-url <url> [--queue-url <url>]]

Moves dead-lettered events back to the events queue (fix what refused them first: \`npm run dlq\`).
  --local            the queues of \`npm start\` (embedded SQS on SQS_PORT, default 3002)
  --dlq-url <url>    the DlqUrl output of the deploy (default: $DLQ_URL)
  --queue-url <url>  where to move them (default: $QUEUE_URL, else the queue the DLQ serves)
On AWS this starts an SQS message move task; against an emulator (--local, or
AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL set) the messages are moved by this command.`

export const main = async (argv: string[], io: CliIo = {}): Promise<number> => {
  const { env = process.env, out = console.log, err = console.error } = io
  const values = parseFlags(
    argv,
    {
      ...TARGET_FLAGS,
      'queue-url': { type: 'string' },
    },
    USAGE,
  )
  if (typeof values === 'number') return values
  let target: CliTarget
  try {
    target = cliTarget(values, env)
  } catch (error) {
    return usageExit(error, USAGE, err)
  }
  const sqs = sqsClientFor(target)
  try {
    const result = await redrive(sqs, {
      dlqUrl: target.dlqUrl,
      queueUrl: target.queueUrl,
      mode: target.emulated ? 'local' : 'auto',
      log: err,
    })
    for (const line of describeRedrive(result, target.region)) out(line)
    return result.mode === 'local' && (result.failed > 0 || result.error !== undefined) ? 1 : 0
  } catch (error) {
    return usageExit(error, USAGE, err)
  } finally {
    sqs.destroy()
  }
}

if (import.meta.main) await runCli(main)
