import { createHash } from 'node:crypto'
import { identityString, personIn } from '../segment/identity.ts'

/**
 * Which FIFO message group an event belongs to, and its deduplication id: the two ids that make
 * an SQS FIFO queue keep each user's events in order and drop Segment's retries.
 *
 * SQS allows 1–128 characters for both ids, alphanumeric (a-z, A-Z, 0-9) and punctuation
 * (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~); anything else is refused.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
 * (MessageGroupId, MessageDeduplicationId)
 *
 * The group is the user: `userId`, else `anonymousId` (Segment's own identity rule). An id that
 * fits SQS's rule is kept readable (`user:<userId>`, `anon:<anonymousId>`), so logs and the DLQ
 * show whose events they are; any other id (spaces, non-ASCII, longer than fits) becomes the
 * SHA-256 of its text (`user#<hex>`), the same for every event of that user. An event with
 * neither id (only ever a rejected one, on its way to the DLQ) has no user order to keep: it is
 * a group of its own (`none:` + its messageId, else a hash of its text), so it never waits
 * behind, nor holds up, anyone else.
 */

export const SQS_FIFO_ID_MAX_LENGTH = 128

/** SQS's character rule for MessageGroupId and MessageDeduplicationId: printable ASCII but space. */
const SQS_FIFO_ID = /^[\x21-\x7E]{1,128}$/

export const isValidFifoId = (id: string): boolean => SQS_FIFO_ID.test(id)

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex')

/** `prefix:id` when that is a valid SQS id, else `prefix#<sha256 of id>` (prefix + 65 chars). */
export const fifoId = (prefix: string, id: string): string => {
  const readable = `${prefix}:${id}`
  return isValidFifoId(readable) ? readable : `${prefix}#${sha256(id)}`
}

/** The user's FIFO prefix, by the field that names them. */
const PREFIX = { userId: 'user', anonymousId: 'anon' } as const

/**
 * The message group of an event (or of whatever was sent in its place: `value` may be any JSON
 * value; `text` is its raw text: it keeps a 20-digit numeric id's digits, and is the fallback
 * identity of an event without any id).
 */
export const messageGroupId = (value: unknown, text: string): string => {
  const person = personIn(value, text)
  if (person !== undefined) return fifoId(PREFIX[person.field], person.id)
  const messageId = identityString('messageId', (value as { messageId?: unknown } | null)?.messageId)
  return 'id' in messageId && messageId.id !== undefined
    ? fifoId('none', messageId.id)
    : `none#${sha256(text)}`
}

/** The message group of a queued message's text, whatever it holds. */
export const messageGroupOfText = (text: string): string => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    value = undefined
  }
  return messageGroupId(value, text)
}

/**
 * The deduplication id of an event on the events queue: its Segment messageId (Segment dedupes on
 * it too), so a Segment retry of the same request within SQS's 5-minute window is dropped by SQS.
 * With DeduplicationScope messageGroup the window is per user.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html
 */
export const eventDeduplicationId = (messageId: string): string => fifoId('m', messageId)
