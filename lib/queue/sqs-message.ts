import type { MessageAttributeValue } from '@aws-sdk/client-sqs'

/**
 * One message for SQS: the body exactly as it must arrive, string attributes, and the size
 * SQS will charge it against the message and batch limits.
 */
export interface OutgoingMessage {
  readonly body: string
  readonly attributes: Readonly<Record<string, string>>
  readonly size: number
  /** FIFO MessageGroupId (lib/queue/message-group.ts); also orders ingest's sends on a standard queue. */
  readonly group?: string | undefined
  /** FIFO MessageDeduplicationId; sent only to FIFO queues. */
  readonly deduplicationId?: string | undefined
}

const STRING = 'String'

/** SQS message size = body bytes + each attribute's name, data type and value bytes. */
export const messageSize = (body: string, attributes: Readonly<Record<string, string>>): number => {
  let size = Buffer.byteLength(body, 'utf8')
  for (const [name, value] of Object.entries(attributes)) {
    size += Buffer.byteLength(name, 'utf8') + STRING.length + Buffer.byteLength(value, 'utf8')
  }
  return size
}

/** Attribute values (reasons, Courier's messages) are cut to this many characters. */
export const MAX_ATTRIBUTE_CHARS = 1_000

export interface FifoIds {
  readonly group: string
  readonly deduplicationId: string
}

/**
 * A message whose attributes SQS will take. Values come from input (messageId, type, reasons
 * quoting Segment's or Courier's text), and SQS holds a String attribute value to the body's
 * character rule, failing the entry with SenderFault otherwise: each value is cut first (a cut
 * can split a surrogate pair) and then made safe with sqsSafeText. Empty values are left out,
 * as SQS refuses them.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html
 */
export const outgoingMessage = (
  body: string,
  attributes: Record<string, string | number | undefined>,
  fifo?: FifoIds,
): OutgoingMessage => {
  const strings: Record<string, string> = {}
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === '') continue
    strings[name] = sqsSafeText(String(value).slice(0, MAX_ATTRIBUTE_CHARS))
  }
  return { body, attributes: strings, size: messageSize(body, strings), ...fifo }
}

/**
 * A queue is FIFO exactly when its name ends in `.fifo` (SQS requires the suffix), so the URL
 * says which kind it is. https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-understanding-logic.html
 */
export const isFifoQueueUrl = (url: string): boolean => url.endsWith('.fifo')

/** The SendMessage(Batch) fields a FIFO queue requires; none for a standard queue (it refuses a deduplication id). */
export const fifoFields = (
  message: Pick<OutgoingMessage, 'group' | 'deduplicationId'>,
  fifo: boolean,
): { MessageGroupId?: string; MessageDeduplicationId?: string } =>
  fifo && message.group !== undefined
    ? {
        MessageGroupId: message.group,
        ...(message.deduplicationId !== undefined ? { MessageDeduplicationId: message.deduplicationId } : {}),
      }
    : {}

export const toSqsAttributes = (
  attributes: Readonly<Record<string, string>>,
): Record<string, MessageAttributeValue> =>
  Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => [name, { DataType: STRING, StringValue: value }]),
  )

/**
 * Characters SQS refuses in a message body and in String attribute values (it allows #x9 #xA #xD
 * #x20–#xD7FF #xE000–#xFFFD #x10000–#x10FFFF).
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
 */
const SQS_FORBIDDEN = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu

const unicodeEscape = (ch: string) => `\\u${(ch.codePointAt(0) as number).toString(16).padStart(4, '0')}`

/** Whether SQS takes `text` as it is, as a message body or a String attribute value. */
export const isSqsText = (text: string): boolean => text.search(SQS_FORBIDDEN) === -1

/** Any text SQS will take: each forbidden character written as its `\uXXXX` escape, the rest unchanged. */
export const sqsSafeText = (text: string): string => text.replace(SQS_FORBIDDEN, unicodeEscape)

/**
 * JSON text SQS will take. Valid JSON can hold a forbidden character only inside a string
 * (U+FFFE, U+FFFF, a lone surrogate), where its `\uXXXX` escape means exactly the same value,
 * so the event Courier receives is unchanged. Any other text passes through byte-for-byte.
 */
export const sqsSafeJson = (text: string): string => sqsSafeText(text)
