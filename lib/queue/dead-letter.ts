import { type FifoIds, MAX_ATTRIBUTE_CHARS, type OutgoingMessage, outgoingMessage } from './sqs-message.ts'

/**
 * The DLQ message for an event that can never be delivered: the event's own text as the body
 * (so a redrive replays it unchanged) and why, as message attributes that `npm run dlq` shows.
 *
 * A redrive puts the event back with its attributes as they were (SQS's message move task keeps
 * them; `npm run redrive -- --local` does the same), so when the event fails again its earlier
 * reasons and its truncation flag are read from the message and carried into the new dead
 * letter: `history` lists the earlier failures, oldest first, and a truncated body stays marked
 * truncated even though the new failure ("not JSON") would not say why.
 *
 * On a FIFO DLQ it keeps its user's message group, so a redrive brings each user's events back
 * in order; the DLQ of a FIFO queue must itself be FIFO.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
 */

export interface DeadLetterReason {
  /** Where it was given up on: rejected at ingest, refused by Courier in delivery or in the audience list sync. */
  readonly stage: 'ingest' | 'deliver' | 'audience-sync'
  readonly reason: string
  readonly messageId?: string | undefined
  readonly type?: string | undefined
  /** Courier's HTTP status, for delivery failures. */
  readonly status?: number | undefined
  /** Courier's error type (invalid_request_error …), when it sent one. */
  readonly courierType?: string | undefined
  readonly at?: Date
  /** The string attributes of the message being given up on (a redriven dead letter carries its past). */
  readonly previous?: Readonly<Record<string, string>> | undefined
}

/** One earlier dead-lettering of the same event. */
export interface PastDeadLetter {
  readonly at?: string | undefined
  readonly stage?: string | undefined
  readonly status?: string | undefined
  readonly reason?: string | undefined
}

export const HISTORY_ATTRIBUTE = 'history'
const TRUNCATION_MARK = '…[truncated]'
/** Each earlier reason is cut to this many characters, so several fit in one attribute. */
const HISTORY_REASON_CHARS = 160

const parseHistory = (raw: string | undefined): PastDeadLetter[] => {
  if (raw === undefined) return []
  try {
    const value = JSON.parse(raw) as unknown
    return Array.isArray(value)
      ? (value.filter((e) => typeof e === 'object' && e !== null) as PastDeadLetter[])
      : []
  } catch {
    return []
  }
}

/** Pure: the earlier failures a message's attributes record, oldest first (its own reason last). */
export const pastDeadLetters = (
  attributes: Readonly<Record<string, string>> | undefined,
): PastDeadLetter[] => {
  if (attributes === undefined) return []
  const history = parseHistory(attributes[HISTORY_ATTRIBUTE])
  if (attributes.reason === undefined) return history
  return [
    ...history,
    {
      at: attributes.deadLetteredAt,
      stage: attributes.stage,
      status: attributes.status,
      reason: attributes.reason,
    },
  ]
}

/** Pure: the history as one attribute value within SQS's limits: the newest entries that fit. */
export const encodeHistory = (history: readonly PastDeadLetter[]): string | undefined => {
  const entries = history.map((entry) => ({
    ...entry,
    ...(entry.reason === undefined ? {} : { reason: entry.reason.slice(0, HISTORY_REASON_CHARS) }),
  }))
  for (let first = 0; first < entries.length; first++) {
    const text = JSON.stringify(entries.slice(first))
    if (text.length <= MAX_ATTRIBUTE_CHARS) return text
  }
  return undefined
}

export const deadLetterMessage = (
  body: string,
  why: DeadLetterReason,
  maxBytes: number,
  fifo?: FifoIds,
): OutgoingMessage => {
  const previous = why.previous ?? {}
  const carriedTruncation =
    previous.truncated === 'true' ? { truncated: 'true', originalBytes: previous.originalBytes } : {}
  const attributes = {
    stage: why.stage,
    reason: why.reason,
    messageId: why.messageId,
    type: why.type,
    status: why.status,
    courierType: why.courierType,
    deadLetteredAt: (why.at ?? new Date()).toISOString(),
    [HISTORY_ATTRIBUTE]: encodeHistory(pastDeadLetters(why.previous)),
    ...carriedTruncation,
  }
  const message = outgoingMessage(body, attributes, fifo)
  if (message.size <= maxBytes) return message
  // Too big to keep whole (the reason it was rejected, usually): keep the head and say so.
  const budget = Math.max(0, maxBytes - (message.size - Buffer.byteLength(body)) - 200)
  const head = Buffer.from(body, 'utf8')
    .subarray(0, budget)
    .toString('utf8')
    .replace(/\uFFFD+$/, '')
  return outgoingMessage(
    `${head}${TRUNCATION_MARK}`,
    {
      ...attributes,
      truncated: 'true',
      originalBytes: Buffer.byteLength(body),
    },
    fifo,
  )
}

/** Every character outside printable ASCII as a `\uXXXX` escape (UTF-16 units, so lone surrogates too). */
const ascii = (text: string): string =>
  text.replace(/[^\x20-\x7E]/g, (ch) => `\\u${(ch.charCodeAt(0) as number).toString(16).padStart(4, '0')}`)

/**
 * The last resort when SQS refused a dead letter for what it holds: the same body (already made
 * SQS-safe) and every attribute in plain ASCII, which SQS takes whatever the input was, with SQS's
 * refusal noted. An event is dead-lettered once, never retried forever because of its attributes.
 */
export const plainDeadLetter = (message: OutgoingMessage, refusal: string): OutgoingMessage => {
  const attributes: Record<string, string> = {}
  for (const [name, value] of Object.entries(message.attributes)) attributes[name] = ascii(value)
  const fifo =
    message.group !== undefined && message.deduplicationId !== undefined
      ? { group: message.group, deduplicationId: message.deduplicationId }
      : undefined
  return outgoingMessage(message.body, { ...attributes, deadLetterRefused: ascii(refusal) }, fifo)
}
