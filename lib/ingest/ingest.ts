import { createHash } from 'node:crypto'
import type { Logger } from '@aws-lambda-powertools/logger'
import type { Metrics } from '@aws-lambda-powertools/metrics'
import type { SQSClient } from '@aws-sdk/client-sqs'
import type { Config } from '../config.ts'
import { HttpError } from '../errors/http-error.ts'
import { deadLetterMessage, plainDeadLetter } from '../queue/dead-letter.ts'
import { enqueue } from '../queue/enqueue.ts'
import { eventDeduplicationId, fifoId, messageGroupId } from '../queue/message-group.ts'
import { type OutgoingMessage, outgoingMessage, sqsSafeJson } from '../queue/sqs-message.ts'
import { MAX_MESSAGE_ID_LENGTH, type Validation, validateEvent } from '../segment/event.ts'
import { personOf, readIdentities } from '../segment/identity.ts'
import { MAX_LISTED_REJECTIONS, MAX_REASON_LENGTH } from '../segment/limits.ts'
import { parseJson, readSegmentRequest } from '../segment/request.ts'
import { addMetric, idsForLog } from '../telemetry.ts'
import { userKey } from '../user-key.ts'

/**
 * The ingest path after authentication: read Segment's body, validate every event, and put
 * the valid ones on the events queue and the invalid ones, with their reasons, on the DLQ,
 * all before Segment stops waiting: 5 s for classic Webhooks
 * (https://segment.com/docs/connections/destinations/catalog/webhooks/#webhooks-timeouts), 10 s
 * for Webhooks (Actions) (segmentio/action-destinations `packages/core/src/request-client.ts`,
 * DEFAULT_REQUEST_TIMEOUT). Only a request whose every event is safely stored gets
 * a 200; otherwise 503 makes Segment retry it (duplicates are safe: Courier dedupes on messageId,
 * and a FIFO queue drops a repeat within 5 minutes itself).
 *
 * Each message carries its user's message group (lib/queue/message-group.ts) in the order the
 * events stand in the request, and enqueue keeps that order per group: one user's events leave
 * ingest in the order Segment sent them, other users' events in any order.
 */

export interface Rejection {
  readonly index: number
  readonly messageId: string | undefined
  readonly error: string
}

export interface IngestAnswer {
  readonly accepted: number
  readonly rejected: readonly Rejection[]
  /** How many rejections `rejected` leaves out (only when there are more than it lists). */
  readonly rejectedNotListed?: number
}

export interface IngestDeps {
  readonly config: Config
  readonly sqs: SQSClient
  readonly logger: Logger
  readonly metrics?: Metrics
}

/**
 * A rejected event's FIFO ids on the DLQ: its user's group, so a redrive replays it in its place
 * (an event naming nobody is a group of its own, lib/queue/message-group.ts); deduplicated on its
 * text, so a Segment retry of the same request does not store it twice.
 */
const rejectedIds = (group: string | undefined, raw: string) => ({
  group: group ?? messageGroupId(undefined, raw),
  deduplicationId: fifoId('rejected', createHash('sha256').update(raw, 'utf8').digest('hex')),
})

/** Time kept back from the Lambda deadline to answer after the last SQS attempt. */
const ANSWER_MARGIN_MS = 250

/** A reason cut to MAX_REASON_LENGTH characters (it may quote what the event held). */
const boundedReason = (reason: string): string =>
  reason.length <= MAX_REASON_LENGTH ? reason : `${reason.slice(0, MAX_REASON_LENGTH - 1)}…`

/** A messageId as an answer may quote it: Segment's are at most 100 characters, a longer one is cut. */
const boundedMessageId = (messageId: string | undefined): string | undefined =>
  messageId === undefined || messageId.length <= MAX_MESSAGE_ID_LENGTH
    ? messageId
    : `${messageId.slice(0, MAX_MESSAGE_ID_LENGTH)}…`

/**
 * The rejections an answer or a log line lists: the first MAX_LISTED_REJECTIONS, and how many more
 * there were, so no answer outgrows what Lambda can return.
 */
export const listedRejections = (
  rejected: readonly Rejection[],
): { rejected: readonly Rejection[]; rejectedNotListed?: number } =>
  rejected.length <= MAX_LISTED_REJECTIONS
    ? { rejected }
    : {
        rejected: rejected.slice(0, MAX_LISTED_REJECTIONS),
        rejectedNotListed: rejected.length - MAX_LISTED_REJECTIONS,
      }

/**
 * `parse` is the body's one parse when authentication already made it (lib/ingest/segment-auth.ts).
 * Answers `{accepted, rejected}` (rejected listed up to MAX_LISTED_REJECTIONS, then
 * `rejectedNotListed`); throws HttpError 400/413 for a body it cannot read, 503 when the queue did
 * not take every event in time.
 */
export const ingest = async (
  deps: IngestDeps,
  text: string,
  remainingMs: number,
  parse: () => unknown = () => parseJson(text),
): Promise<IngestAnswer> => {
  const { config, sqs, logger, metrics } = deps
  const request = readSegmentRequest(text, parse())
  const accepted: OutgoingMessage[] = []
  const acceptedIds: string[] = []
  /** Where each accepted message came from, should SQS refuse it. */
  const origins = new Map<
    OutgoingMessage,
    { index: number; messageId: string; raw: string; type: string; user: string | undefined }
  >()
  /** Each accepted event's pseudonymous user key (lib/user-key.ts), beside its messageId. */
  const acceptedUsers: (string | undefined)[] = []
  const types: Record<string, number> = {}
  const rejected: Rejection[] = []
  const deadLetters: OutgoingMessage[] = []
  /** Each rejected event's user key, for the log line only (Segment's answer has no need of it). */
  const rejectedUsers = new Map<number, string | undefined>()
  const reject = (raw: string, value: unknown, given: Rejection, type: unknown) => {
    const rejection = {
      index: given.index,
      messageId: boundedMessageId(given.messageId),
      error: boundedReason(given.error),
    }
    rejected.push(rejection)
    const who =
      typeof value === 'object' && value !== null
        ? readIdentities(value as Record<string, unknown>, raw)
        : undefined
    rejectedUsers.set(rejection.index, who?.ok === true ? userKey(personOf(who.ids)?.id) : undefined)
    const why = {
      stage: 'ingest',
      reason: rejection.error,
      messageId: rejection.messageId,
      type: typeof type === 'string' ? type : String(type ?? ''),
    } as const
    const fifo = rejectedIds(messageGroupId(value, raw), raw)
    deadLetters.push(deadLetterMessage(sqsSafeJson(raw), why, config.queue.batchMaxBytes, fifo))
  }

  for (const item of request.items) {
    // The text as queued: the deliver side validates the same bytes, so a derived messageId matches.
    const text = sqsSafeJson(item.raw)
    const validation: Validation =
      item.error === undefined
        ? validateEvent(item.value, text)
        : { ok: false, error: item.error, messageId: undefined }
    const type = (item.value as { type?: unknown } | null)?.type
    if (!validation.ok) {
      const rejection = { index: item.index, messageId: validation.messageId, error: validation.error }
      reject(item.raw, item.value, rejection, type)
      continue
    }
    const { event } = validation
    // The user's message group (their ids in the string form Segment's rule gives them) and
    // Segment's messageId as the FIFO deduplication id.
    const ids = readIdentities(event, text)
    const who = ids.ok ? ids.ids : {}
    const message = outgoingMessage(
      text,
      { type: event.type, messageId: event.messageId },
      {
        group: messageGroupId({ ...who, messageId: event.messageId }, text),
        deduplicationId: eventDeduplicationId(event.messageId),
      },
    )
    if (message.size > config.queue.batchMaxBytes) {
      const error = `event is ${message.size} bytes; one queue message holds at most ${config.queue.batchMaxBytes}`
      reject(item.raw, item.value, { index: item.index, messageId: event.messageId, error }, type)
      continue
    }
    accepted.push(message)
    origins.set(message, {
      index: item.index,
      messageId: event.messageId,
      raw: item.raw,
      type: event.type,
      user: userKey(personOf(who)?.id),
    })
  }

  const deadline = Date.now() + Math.min(config.ingest.deadlineMs, remainingMs - ANSWER_MARGIN_MS)
  const options = { batchMaxBytes: config.queue.batchMaxBytes, deadline }
  const toDlq = { ...options, queueUrl: config.queue.dlqUrl }
  const [queued, parked] = await Promise.all([
    enqueue(sqs, accepted, { ...options, queueUrl: config.queue.url }),
    enqueue(sqs, deadLetters, toDlq),
  ])

  // SQS refused some events for what they hold (SenderFault): retrying would fail the same way
  // and make Segment resend, and so duplicate, the good ones. They are rejected and kept in the DLQ.
  const lateDeadLetters: OutgoingMessage[] = []
  for (const { message, reason } of queued.refused) {
    const origin = origins.get(message)
    if (origin === undefined) continue
    origins.delete(message)
    rejected.push({ index: origin.index, messageId: origin.messageId, error: boundedReason(reason) })
    rejectedUsers.set(origin.index, origin.user)
    const why = { stage: 'ingest', reason, messageId: origin.messageId, type: origin.type } as const
    lateDeadLetters.push(
      deadLetterMessage(
        sqsSafeJson(origin.raw),
        why,
        config.queue.batchMaxBytes,
        rejectedIds(message.group, origin.raw),
      ),
    )
  }
  // A dead letter refused for its attributes is sent again with them in plain ASCII.
  lateDeadLetters.push(...parked.refused.map(({ message, reason }) => plainDeadLetter(message, reason)))
  const late = await enqueue(sqs, lateDeadLetters, toDlq)
  const lost = late.refused.map(({ message, reason }) => ({
    messageId: message.attributes.messageId,
    reason,
  }))
  if (lost.length > 0)
    logger.error('SQS refused dead letters even in plain ASCII; they are not kept', { lost })

  for (const message of origins.keys()) {
    const origin = origins.get(message) as { messageId: string; type: string; user: string | undefined }
    acceptedIds.push(origin.messageId)
    acceptedUsers.push(origin.user)
    types[origin.type] = (types[origin.type] ?? 0) + 1
  }
  rejected.sort((a, b) => a.index - b.index)
  const stored = origins.size

  const summary = {
    shape: request.shape,
    received: request.items.length,
    types,
    sqsCalls: queued.calls + parked.calls + late.calls,
  }
  addMetric(metrics, 'Received', request.items.length)
  if (rejected.length > 0) {
    const listed = listedRejections(rejected)
    logger.warn('events rejected', {
      ...listed,
      rejected: listed.rejected.map((one) => ({ ...one, user: rejectedUsers.get(one.index) })),
    })
  }
  const unsent = queued.unsent.length + parked.unsent.length + late.unsent.length
  if (unsent > 0) {
    const lastError = queued.lastError ?? parked.lastError ?? late.lastError
    logger.error('events not stored before the deadline; answering 503 so Segment retries', {
      ...summary,
      unsentEvents: queued.unsent.length,
      unsentRejections: parked.unsent.length + late.unsent.length,
      error: String(lastError),
    })
    throw new HttpError(503, 'the queue did not take every event in time; retry the request', {
      cause: lastError,
    })
  }
  addMetric(metrics, 'Enqueued', stored)
  addMetric(metrics, 'Rejected', rejected.length)
  logger.info('events enqueued', {
    ...summary,
    accepted: stored,
    rejected: rejected.length,
    ...idsForLog(acceptedIds),
    users: idsForLog(acceptedUsers).messageIds,
  })

  if (stored === 0) {
    const message = request.items.length === 0 ? 'body holds no events' : 'body holds no valid event'
    throw new HttpError(400, message, { details: { accepted: 0, ...listedRejections(rejected) } })
  }
  return { accepted: stored, ...listedRejections(rejected) }
}
