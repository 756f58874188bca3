import type { Logger } from '@aws-lambda-powertools/logger'
import type { Metrics } from '@aws-lambda-powertools/metrics'
import type { SQSClient } from '@aws-sdk/client-sqs'
import type { Config } from '../config.ts'
import { HttpError } from '../errors/http-error.ts'
import { deadLetterMessage } from '../queue/dead-letter.ts'
import { enqueue } from '../queue/enqueue.ts'
import { type OutgoingMessage, outgoingMessage, sqsSafeJson } from '../queue/sqs-message.ts'
import { type Validation, validateEvent } from '../segment/event.ts'
import { parseJson, readSegmentRequest } from '../segment/request.ts'
import { addMetric, idsForLog } from '../telemetry.ts'

/**
 * The ingest path after authentication: read Segment's body, validate every event, and put
 * the valid ones on the events queue and the invalid ones, with their reasons, on the DLQ,
 * all before Segment's ~5 s timeout. Only a request whose every event is safely stored gets
 * a 200; otherwise 503 makes Segment retry it (duplicates are safe: Courier dedupes on messageId).
 */

export interface Rejection {
  readonly index: number
  readonly messageId: string | undefined
  readonly error: string
}

export interface IngestAnswer {
  readonly accepted: number
  readonly rejected: readonly Rejection[]
}

export interface IngestDeps {
  readonly config: Config
  readonly sqs: SQSClient
  readonly logger: Logger
  readonly metrics?: Metrics
}

/** Time kept back from the Lambda deadline to answer after the last SQS attempt. */
const ANSWER_MARGIN_MS = 250

export const ingest = async (deps: IngestDeps, text: string, remainingMs: number): Promise<IngestAnswer> => {
  const { config, sqs, logger, metrics } = deps
  const request = readSegmentRequest(text, parseJson(text))
  const accepted: OutgoingMessage[] = []
  const acceptedIds: string[] = []
  const types: Record<string, number> = {}
  const rejected: Rejection[] = []
  const deadLetters: OutgoingMessage[] = []
  const reject = (raw: string, rejection: Rejection, type: unknown) => {
    rejected.push(rejection)
    const why = {
      stage: 'ingest',
      reason: rejection.error,
      messageId: rejection.messageId,
      type: String(type ?? ''),
    } as const
    deadLetters.push(deadLetterMessage(sqsSafeJson(raw), why, config.queue.batchMaxBytes))
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
      reject(item.raw, { index: item.index, messageId: validation.messageId, error: validation.error }, type)
      continue
    }
    const { event } = validation
    const message = outgoingMessage(text, { type: event.type, messageId: event.messageId })
    if (message.size > config.queue.batchMaxBytes) {
      const error = `event is ${message.size} bytes; one queue message holds at most ${config.queue.batchMaxBytes}`
      reject(item.raw, { index: item.index, messageId: event.messageId, error }, type)
      continue
    }
    accepted.push(message)
    acceptedIds.push(event.messageId)
    types[event.type] = (types[event.type] ?? 0) + 1
  }

  const deadline = Date.now() + Math.min(config.ingest.deadlineMs, remainingMs - ANSWER_MARGIN_MS)
  const options = { batchMaxBytes: config.queue.batchMaxBytes, deadline }
  const [queued, parked] = await Promise.all([
    enqueue(sqs, accepted, { ...options, queueUrl: config.queue.url }),
    enqueue(sqs, deadLetters, { ...options, queueUrl: config.queue.dlqUrl }),
  ])

  const summary = {
    shape: request.shape,
    received: request.items.length,
    types,
    sqsCalls: queued.calls + parked.calls,
  }
  addMetric(metrics, 'Received', request.items.length)
  if (rejected.length > 0) logger.warn('events rejected', { rejected })
  if (queued.unsent.length > 0 || parked.unsent.length > 0) {
    logger.error('events not stored before the deadline; answering 503 so Segment retries', {
      ...summary,
      unsentEvents: queued.unsent.length,
      unsentRejections: parked.unsent.length,
      error: String(queued.lastError ?? parked.lastError),
    })
    throw new HttpError(503, 'the queue did not take every event in time; retry the request', {
      cause: queued.lastError ?? parked.lastError,
    })
  }
  addMetric(metrics, 'Enqueued', accepted.length)
  addMetric(metrics, 'Rejected', rejected.length)
  logger.info('events enqueued', {
    ...summary,
    accepted: accepted.length,
    rejected: rejected.length,
    ...idsForLog(acceptedIds),
  })

  if (accepted.length === 0) {
    const message = request.items.length === 0 ? 'body holds no events' : 'body holds no valid event'
    throw new HttpError(400, message, { details: { accepted: 0, rejected } })
  }
  return { accepted: accepted.length, rejected }
}
