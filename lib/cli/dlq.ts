import {
  ChangeMessageVisibilityBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import { HISTORY_ATTRIBUTE, type PastDeadLetter, pastDeadLetters } from '../queue/dead-letter.ts'
import { createSqsClient } from '../queue/sqs-client.ts'
import { userKey as personOf, readIdentities } from '../segment/identity.ts'
import { isUserKey, type UserKeyOf, userKeySecret, userKeyWith } from '../user-key.ts'
import { parseFlags, runCli, usageProblem } from './args.ts'
import { type CliTarget, cliTarget, type Env, UsageError } from './target.ts'

/**
 * `npm run dlq -- [--local | --dlq-url <url>] [--max N] [--json]`: lists dead-lettered events
 * with why they are there, and leaves every one of them in the DLQ.
 *
 * SQS has no peek. Receiving with VisibilityTimeout 0 leaves messages visible, so nothing
 * stops each receive returning the same few and the list would never be known complete. So
 * every message is received once with a short visibility timeout (each receive then returns
 * new ones, until none are left), and all of them are made visible again right after with
 * ChangeMessageVisibility 0, the documented way to end a visibility timeout early. Nothing is
 * deleted. Were the command killed half-way, the messages reappear by themselves after
 * HIDE_SECONDS; the DLQ has no consumer and no redrive policy of its own, so the extra receive
 * count costs nothing.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
 */

/** A dead-lettered event: the attributes lib/queue/dead-letter.ts writes, typed, and the body as stored. */
export interface DeadLetter {
  /** SQS's id of the DLQ message (not the event's). */
  readonly sqsMessageId: string
  /** The event's text as it was queued (the head only, when `truncated`). */
  readonly body: string
  readonly deadLetteredAt: string | undefined
  readonly stage: string | undefined
  /** Courier's HTTP status, for delivery failures. */
  readonly status: number | undefined
  readonly courierType: string | undefined
  readonly type: string | undefined
  /** The person's pseudonymous key (lib/user-key.ts), from the body's userId else anonymousId. */
  readonly user: string | undefined
  readonly messageId: string | undefined
  readonly reason: string | undefined
  readonly truncated: boolean
  readonly originalBytes: number | undefined
  /** Earlier dead-letterings of the same event (it was redriven and failed again), oldest first. */
  readonly history: readonly PastDeadLetter[]
  /** Every string message attribute, as stored. */
  readonly attributes: Readonly<Record<string, string>>
}

export interface ListOptions {
  /** Stop after this many (default 1000). */
  readonly max?: number
  /** How long a listed message is hidden before it is made visible again (at most). */
  readonly hideSeconds?: number
  /**
   * Long polling for each receive: short polls sample only some SQS servers and may come back
   * empty while messages remain, a long poll asks them all. The last, empty receive waits this long.
   */
  readonly waitSeconds?: number
  /** Told about messages whose visibility could not be restored (they reappear after hideSeconds). */
  readonly warn?: (line: string) => void
  /** Makes the user keys (default: with the secret of this process's environment). */
  readonly keyOf?: UserKeyOf
}

export const DEFAULT_MAX = 1_000
const HIDE_SECONDS = 60
const BATCH = 10

const stringAttributes = (message: Message): Record<string, string> => {
  const attributes: Record<string, string> = {}
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    if (value.StringValue !== undefined) attributes[name] = value.StringValue
  }
  return attributes
}

const optionalNumber = (raw: string | undefined): number | undefined => {
  if (raw === undefined || raw.trim() === '') return undefined
  const value = Number(raw)
  return Number.isFinite(value) ? value : undefined
}

/** The key of the person a dead letter's body is about; undefined for a body that is no event (truncated). */
const userOfBody = (body: string, keyOf: UserKeyOf): string | undefined => {
  let value: unknown
  try {
    value = JSON.parse(body)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const read = readIdentities(value as Record<string, unknown>, body)
  const id = read.ok ? personOf(read.ids) : undefined
  return id === undefined ? undefined : keyOf(id)
}

/** Pure: one received DLQ message as a typed record. */
export const toDeadLetter = (
  message: Message,
  keyOf: UserKeyOf = userKeyWith(userKeySecret(process.env)),
): DeadLetter => {
  const a = stringAttributes(message)
  return {
    sqsMessageId: message.MessageId ?? '',
    body: message.Body ?? '',
    deadLetteredAt: a.deadLetteredAt,
    stage: a.stage,
    status: optionalNumber(a.status),
    courierType: a.courierType,
    type: a.type,
    user: userOfBody(message.Body ?? '', keyOf),
    messageId: a.messageId,
    reason: a.reason,
    truncated: a.truncated === 'true',
    originalBytes: optionalNumber(a.originalBytes),
    history: pastDeadLetters({ [HISTORY_ATTRIBUTE]: a[HISTORY_ATTRIBUTE] ?? '[]' }),
    attributes: a,
  }
}

/** Makes received messages visible again; returns how many could not be. */
const restoreVisibility = async (sqs: SQSClient, dlqUrl: string, handles: readonly string[]) => {
  let failed = 0
  for (let i = 0; i < handles.length; i += BATCH) {
    const entries = handles
      .slice(i, i + BATCH)
      .map((handle, index) => ({ Id: String(index), ReceiptHandle: handle, VisibilityTimeout: 0 }))
    try {
      const result = await sqs.send(
        new ChangeMessageVisibilityBatchCommand({ QueueUrl: dlqUrl, Entries: entries }),
      )
      failed += result.Failed?.length ?? 0
    } catch {
      failed += entries.length
    }
  }
  return failed
}

/**
 * Reads up to `max` messages of the DLQ and leaves them all there, visible. A message SQS hands
 * out twice (at-least-once delivery) is listed once.
 */
export const listDeadLetters = async (
  sqs: SQSClient,
  dlqUrl: string,
  // A bare number is the max: the first version of this function took it that way.
  options: ListOptions | number = {},
): Promise<DeadLetter[]> => {
  const {
    max = DEFAULT_MAX,
    hideSeconds = HIDE_SECONDS,
    waitSeconds = 1,
    warn,
    keyOf,
  } = typeof options === 'number' ? { max: options } : options
  const seen = new Map<string, DeadLetter>()
  const handles: string[] = []
  try {
    while (seen.size < max) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: dlqUrl,
          MaxNumberOfMessages: Math.min(BATCH, max - seen.size),
          VisibilityTimeout: hideSeconds,
          WaitTimeSeconds: waitSeconds,
          MessageAttributeNames: ['All'],
        }),
      )
      if (Messages.length === 0) break
      for (const message of Messages) {
        if (message.ReceiptHandle !== undefined) handles.push(message.ReceiptHandle)
        const letter = toDeadLetter(message, keyOf)
        if (!seen.has(letter.sqsMessageId)) seen.set(letter.sqsMessageId, letter)
      }
    }
  } finally {
    // Also after a failed receive: whatever was hidden is put back at once.
    const failed = await restoreVisibility(sqs, dlqUrl, handles)
    if (failed > 0) {
      warn?.(`${failed} message(s) could not be made visible again; they reappear within ${hideSeconds} s`)
    }
  }
  return [...seen.values()].slice(0, max)
}

/** Messages in the DLQ, visible or not, as SQS approximates it. */
export const countDeadLetters = async (sqs: SQSClient, dlqUrl: string): Promise<number> => {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: dlqUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  )
  return (
    Number(Attributes.ApproximateNumberOfMessages ?? 0) +
    Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0) +
    Number(Attributes.ApproximateNumberOfMessagesDelayed ?? 0)
  )
}

/** The header row above the lines of formatDeadLetter. */
export const DEAD_LETTER_HEADER = 'deadLetteredAt  stage  status  type  user  messageId  reason'

/** Pure: the one line a person reads. An event SQS itself moved after maxReceiveCount has no reason attributes. */
export const formatDeadLetter = (letter: DeadLetter): string =>
  [
    letter.deadLetteredAt ?? '-',
    letter.stage ?? '-',
    letter.status === undefined ? '-' : String(letter.status),
    letter.type ?? '-',
    letter.user ?? '-',
    letter.messageId ?? '-',
    letter.reason ?? '(no reason: moved by SQS after maxReceiveCount receives)',
    letter.truncated ? `truncated (${letter.originalBytes ?? '?'} bytes originally)` : '',
    letter.history.length > 0
      ? `(dead-lettered ${letter.history.length} time(s) before: ${letter.history.map((h) => h.reason ?? '?').join(' | ')})`
      : '',
  ]
    .join('  ')
    .trimEnd()

/** Pure: oldest first (SQS hands messages out in no particular order); ISO times sort as text. */
export const byTime = (letters: readonly DeadLetter[]): DeadLetter[] =>
  [...letters].sort((a, b) => (a.deadLetteredAt ?? '').localeCompare(b.deadLetteredAt ?? ''))

/** Pure: one JSON line for `--json`, the body included. */
export const deadLetterJson = (letter: DeadLetter): string =>
  JSON.stringify({
    deadLetteredAt: letter.deadLetteredAt,
    stage: letter.stage,
    status: letter.status,
    courierType: letter.courierType,
    type: letter.type,
    user: letter.user,
    messageId: letter.messageId,
    reason: letter.reason,
    truncated: letter.truncated,
    originalBytes: letter.originalBytes,
    history: letter.history,
    sqsMessageId: letter.sqsMessageId,
    attributes: letter.attributes,
    body: letter.body,
  })

/** The SQS client for a target: the emulator's endpoint and dummy credentials locally, the SDK's own chain on AWS. */
export const sqsClientFor = (target: CliTarget): SQSClient =>
  createSqsClient({
    ...(target.endpoint ? { endpoint: target.endpoint } : {}),
    ...(target.region ? { region: target.region } : {}),
    ...(target.credentials ? { credentials: target.credentials } : {}),
  })

/** A positive whole number flag, or a UsageError. */
export const positiveInteger = (name: string, raw: string | undefined, fallback: number): number => {
  if (raw === undefined) return fallback
  if (!/^\d+$/.test(raw) || Number(raw) < 1)
    throw new UsageError(`--${name} must be a whole number ≥ 1, got "${raw}"`)
  return Number(raw)
}

export interface CliIo {
  readonly env?: Env
  readonly out?: (line: string) => void
  readonly err?: (line: string) => void
}

export const USAGE = `usage: npm run dlq -- [--local | --dlq-url <url>] [--user <userId>] [--max N] [--json]

Lists dead-lettered events, oldest first, with why each is there, and leaves them all in the DLQ.
Each line: when, which stage, Courier's status, the type, the person's user key (never the id),
the messageId and the reason.
  --local          the queues of \`npm start\` (embedded SQS on SQS_PORT, default 3002)
  --dlq-url <url>  the DlqUrl output of the deploy (default: $DLQ_URL)
  --user <userId>  only this person's (the userId, else the anonymousId; or a u_… key), found
                   by the key made with $USER_KEY_SECRET (the stage's; locally the dev secret)
  --max N          list at most N events (default ${DEFAULT_MAX})
  --json           one JSON line per event, body included (the count goes to stderr)`

export const main = async (argv: string[], io: CliIo = {}): Promise<number> => {
  const { env = process.env, out = console.log, err = console.error } = io
  const values = parseFlags(
    argv,
    {
      local: { type: 'boolean' },
      'dlq-url': { type: 'string' },
      user: { type: 'string' },
      max: { type: 'string' },
      json: { type: 'boolean' },
    },
    USAGE,
  )
  if (typeof values === 'number') return values
  let target: CliTarget
  let max: number
  try {
    target = cliTarget(values, env)
    max = positiveInteger('max', values.max, DEFAULT_MAX)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    err(usageProblem(error.message, USAGE))
    return 2
  }
  const sqs = sqsClientFor(target)
  try {
    const total = await countDeadLetters(sqs, target.dlqUrl)
    const keyOf = userKeyWith(userKeySecret(env))
    const wanted =
      values.user === undefined ? undefined : isUserKey(values.user) ? values.user : keyOf(values.user)
    const letters = await listDeadLetters(sqs, target.dlqUrl, { max, warn: err, keyOf })
    const shown = byTime(letters).filter((letter) => wanted === undefined || letter.user === wanted)
    if (!values.json && shown.length > 0) out(DEAD_LETTER_HEADER)
    for (const letter of shown) out(values.json ? deadLetterJson(letter) : formatDeadLetter(letter))
    // With --json, stdout stays pure JSON lines (for jq); the summary goes to stderr.
    const summary = values.json ? err : out
    // A FIFO queue hands out a user's later messages only once the earlier ones are gone, so a
    // listing that leaves everything in place shows the oldest ones of each user.
    // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-understanding-logic.html
    const hint =
      target.dlqUrl.endsWith('.fifo') && letters.length < max
        ? 'a FIFO queue shows the oldest of each user while the earlier ones stay'
        : '--max to see more'
    const more = total > letters.length ? ` (about ${total} in the DLQ; ${hint})` : ''
    const whose =
      wanted === undefined ? '' : ` of user key ${wanted} (${shown.length} of ${letters.length} read)`
    summary(
      `${shown.length} dead-lettered event(s)${whose} listed from ${target.dlqUrl}${more}; nothing was removed`,
    )
    return 0
  } finally {
    sqs.destroy()
  }
}

if (import.meta.main) await runCli(main)
