import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import { giveUpLimits, receiveCountOf } from '../queue/expiry.ts'
import {
  type Fate,
  finishMarginMs,
  NOT_STARTED,
  type Settled,
  settleBatch,
  UNSTARTED_DELAY_SECONDS,
} from '../queue/settle-batch.ts'
import type { SqsTimeouts } from '../queue/sqs-client.ts'
import { personOf } from '../segment/identity.ts'
import type { MetricName } from '../telemetry.ts'
import { addClassMetric, addMetric } from '../telemetry.ts'
import { textForLog, userKey } from '../user-key.ts'
import {
  deliverRecord,
  HELD_BACK,
  type RecordDeps,
  type RecordOutcome,
  type RecordResult,
} from './deliver-record.ts'
import { readBatchMarks } from './erasure-check.ts'
import type { DeliverInstance } from './instance.ts'
import { eventOf, groupOf, idsOf, parseBatch } from './records.ts'
import { byGroup, runGroups } from './schedule.ts'

/**
 * The deliver function's batch: read the records, deliver them in FIFO order, end the batch.
 * Every record ends in exactly one of delivered, retried later (with its delay) or dead-lettered
 * with a reason; one record's failure, an exception included, is that record's alone.
 */

export interface DeliverDeps extends RecordDeps {
  readonly instance: DeliverInstance
  /** The timeouts `sqs` was created with: they size the margin kept to finish (default SQS_TIMEOUTS). */
  readonly sqsTimeouts?: SqsTimeouts | undefined
  /** The queue's maxReceiveCount (default QUEUE_SETTINGS.maxReceiveCount). */
  readonly maxReceiveCount?: number | undefined
}

const METRIC_OF: Readonly<Record<RecordOutcome, MetricName>> = {
  delivered: 'Delivered',
  skipped: 'Skipped',
  erased: 'Erased',
  'dead-lettered': 'DeadLettered',
  retried: 'Retried',
  'rate-limited': 'RateLimited',
  'held-back': 'RateLimited',
  waiting: 'Retried',
}

/** The fate of a result; a retry held back by the batch's 429 waits as long as it said. */
const fateOf = (result: RecordResult, holdBackSeconds: number | undefined): Fate => {
  switch (result.outcome) {
    case 'delivered':
    case 'skipped':
    case 'erased':
      return { action: 'delete' }
    case 'dead-lettered':
      return {
        action: 'dead-letter',
        reason: result.reason,
        status: result.status,
        courierType: result.courierType,
      }
    case 'retried':
    case 'rate-limited':
      return {
        action: 'retry',
        delaySeconds: result.delaySeconds,
        reason: result.reason,
        status: result.status,
        courierType: result.courierType,
        ...(result.exception === true ? { exception: true } : {}),
      }
    case 'held-back':
      return { action: 'retry', delaySeconds: holdBackSeconds ?? 1, status: 429, reason: HELD_BACK }
    case 'waiting': {
      const behind = fateOf(result.behind, holdBackSeconds)
      return {
        action: 'retry',
        delaySeconds: behind.action === 'retry' ? behind.delaySeconds : 0,
        reason: `held back behind an earlier event of the same user (${result.behind.outcome})`,
      }
    }
  }
}

/** What the log and the metrics call a record, once the batch's end has settled it. */
const outcomeOf = (result: RecordResult | undefined, settled: Settled, stopped: boolean): RecordOutcome => {
  if (settled.changed === 'given-up') return 'dead-lettered'
  if (settled.changed === 'not-dead-lettered') return 'retried'
  if (result !== undefined) return result.outcome
  return stopped ? 'held-back' : 'retried'
}

export const deliverBatch = async (
  deps: DeliverDeps,
  event: SQSEvent,
  context: Context,
): Promise<SQSBatchResponse> => {
  const records = event.Records
  const invokedAt = Date.now()
  const deadline = invokedAt + context.getRemainingTimeInMillis() - finishMarginMs(deps.sqsTimeouts)
  const batch = parseBatch(records)
  // One read of the deletion marks for the whole batch, before anything is sent.
  const marks = await readBatchMarks(
    deps.deletionMarks,
    [...batch.values()].flatMap((parsed) => ('ids' in parsed ? [parsed.ids] : [])),
  )
  const groupOfRecord = (record: SQSRecord) => groupOf(batch, record)
  let holdBackSeconds: number | undefined
  const held = new AbortController()

  const deliver = async (record: SQSRecord): Promise<RecordResult> => {
    let result: RecordResult
    try {
      result = await deliverRecord(
        deps,
        record,
        batch.get(record) ?? { error: 'unread' },
        deadline,
        held.signal,
        marks,
      )
    } catch (error) {
      // A bug, or input no rule foresaw: this record's failure alone, retried (never dropped on
      // the first throw) and dead-lettered once it keeps throwing (lib/queue/expiry.ts).
      deps.logger.error('unexpected error delivering a record', {
        sqsMessageId: record.messageId,
        error: error as Error,
      })
      result = {
        outcome: 'retried',
        event: eventOf(batch, record),
        delaySeconds: deps.config.retry.baseSeconds,
        reason: `unexpected error: ${String(error)}`,
        exception: true,
      }
    }
    if (result.outcome === 'rate-limited' && result.holdBatch === true) {
      holdBackSeconds = Math.max(holdBackSeconds ?? 0, result.delaySeconds)
      held.abort()
    }
    return result
  }

  const results = await runGroups(byGroup(records, groupOfRecord), {
    concurrency: deps.config.delivery.concurrency,
    deadline,
    stopped: () => holdBackSeconds !== undefined,
    deliver,
  })

  const fates = new Map<SQSRecord, Fate>()
  for (const record of records) {
    const result = results.get(record)
    // Not attempted: held back by the batch's 429, else the deadline came first.
    fates.set(
      record,
      result !== undefined
        ? fateOf(result, holdBackSeconds)
        : holdBackSeconds !== undefined
          ? { action: 'retry', delaySeconds: holdBackSeconds, status: 429, reason: HELD_BACK }
          : { action: 'retry', delaySeconds: UNSTARTED_DELAY_SECONDS, reason: NOT_STARTED },
    )
  }
  const { response, settled } = await settleBatch(
    {
      sqs: deps.sqs,
      logger: deps.logger,
      queueUrl: deps.config.queue.url,
      dlqUrl: deps.config.queue.dlqUrl,
      fifo: deps.config.queue.fifo,
      batchMaxBytes: deps.config.queue.batchMaxBytes,
      retryBaseSeconds: deps.config.retry.baseSeconds,
      limits: giveUpLimits(deps.config.retry, deps.maxReceiveCount),
      stage: 'deliver',
      invokedAt,
      idsOf: (record) => idsOf(batch, record),
    },
    records,
    fates,
  )

  const counts: Partial<Record<RecordOutcome, number>> = {}
  for (const record of records) {
    const final = settled.get(record) as Settled
    const outcome = outcomeOf(results.get(record), final, holdBackSeconds !== undefined)
    counts[outcome] = (counts[outcome] ?? 0) + 1
    const event = eventOf(batch, record)
    const parsed = batch.get(record)
    const reason = final.action === 'delete' ? reasonOf(results.get(record)) : final.reason
    deps.logger.info('record', {
      messageId: event?.messageId,
      user: parsed !== undefined && 'ids' in parsed ? userKey(personOf(parsed.ids)?.id) : undefined,
      type: event?.type,
      sqsMessageId: record.messageId,
      outcome,
      status: final.action === 'delete' ? statusOf(results.get(record)) : final.status,
      attempt: receiveCountOf(record),
      delaySeconds: final.action === 'retry' ? final.delaySeconds : undefined,
      reason: reason === undefined ? undefined : textForLog(reason),
    })
  }
  for (const [outcome, count] of Object.entries(counts)) {
    addMetric(deps.metrics, METRIC_OF[outcome as RecordOutcome], count)
  }
  for (const [endpointClass, pacer] of deps.instance.pacers()) {
    addClassMetric(deps.metrics, 'CourierRate', endpointClass, pacer.ratePerSecond())
  }
  return response
}

const statusOf = (result: RecordResult | undefined): number | undefined =>
  result?.outcome === 'delivered' ? result.status : undefined

const reasonOf = (result: RecordResult | undefined): string | undefined =>
  result?.outcome === 'skipped' || result?.outcome === 'erased' ? result.reason : undefined
