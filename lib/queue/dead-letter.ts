import { type OutgoingMessage, outgoingMessage } from './sqs-message.ts'

/**
 * The DLQ message for an event that can never be delivered: the event's own text as the body
 * (so a redrive replays it unchanged) and why, as message attributes that `npm run dlq` shows.
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
}

const TRUNCATION_MARK = '…[truncated]'

export const deadLetterMessage = (body: string, why: DeadLetterReason, maxBytes: number): OutgoingMessage => {
  const attributes = {
    stage: why.stage,
    reason: why.reason,
    messageId: why.messageId,
    type: why.type,
    status: why.status,
    courierType: why.courierType,
    deadLetteredAt: (why.at ?? new Date()).toISOString(),
  }
  const message = outgoingMessage(body, attributes)
  if (message.size <= maxBytes) return message
  // Too big to keep whole (the reason it was rejected, usually): keep the head and say so.
  const budget = Math.max(0, maxBytes - (message.size - Buffer.byteLength(body)) - 200)
  const head = Buffer.from(body, 'utf8')
    .subarray(0, budget)
    .toString('utf8')
    .replace(/\uFFFD+$/, '')
  return outgoingMessage(`${head}${TRUNCATION_MARK}`, {
    ...attributes,
    truncated: 'true',
    originalBytes: Buffer.byteLength(body),
  })
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
  return outgoingMessage(message.body, { ...attributes, deadLetterRefused: ascii(refusal) })
}
