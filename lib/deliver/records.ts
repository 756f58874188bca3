import type { SQSRecord } from 'aws-lambda'
import { messageGroupId } from '../queue/message-group.ts'
import type { RecordIds } from '../queue/settle-batch.ts'
import { type SegmentEvent, validateEvent } from '../segment/event.ts'
import type { Identities } from '../segment/identity.ts'

/**
 * A batch's records read once: each body parsed and validated a single time, so grouping,
 * delivery, the dead letter and the log line all see the same event.
 */

export type ParsedRecord =
  | { readonly event: SegmentEvent; readonly ids: Identities }
  | { readonly error: string }

export const parseRecord = (record: SQSRecord): ParsedRecord => {
  let value: unknown
  try {
    value = JSON.parse(record.body)
  } catch {
    return { error: 'message body is not JSON' }
  }
  // The queued text: it keeps 20-digit ids exact and re-derives a deletion's messageId as ingest did.
  const validation = validateEvent(value, record.body)
  return validation.ok
    ? { event: validation.event, ids: validation.ids }
    : { error: `not a valid Segment event: ${validation.error}` }
}

/** One batch's records, each with its parse. */
export type ParsedBatch = ReadonlyMap<SQSRecord, ParsedRecord>

export const parseBatch = (records: readonly SQSRecord[]): ParsedBatch =>
  new Map(records.map((record) => [record, parseRecord(record)]))

export const eventOf = (batch: ParsedBatch, record: SQSRecord): SegmentEvent | undefined => {
  const parsed = batch.get(record)
  return parsed !== undefined && 'event' in parsed ? parsed.event : undefined
}

/**
 * A record's message group: its user. SQS gives it on a FIFO queue; on a standard queue it is
 * worked out the way ingest works it out, so the in-batch order rule is the same on both.
 */
export const groupOf = (batch: ParsedBatch, record: SQSRecord): string => {
  const given = (record.attributes as { MessageGroupId?: string }).MessageGroupId
  if (given) return given
  const parsed = batch.get(record)
  if (parsed !== undefined && 'event' in parsed) {
    return messageGroupId({ ...parsed.ids, messageId: parsed.event.messageId }, record.body)
  }
  return `sqs:${record.messageId}`
}

/** What the dead letter of a record names: its event's ids and its user's group. */
export const idsOf = (batch: ParsedBatch, record: SQSRecord): RecordIds => {
  const event = eventOf(batch, record)
  return { messageId: event?.messageId, type: event?.type, group: groupOf(batch, record) }
}
