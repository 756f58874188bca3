import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import { subscribeCalls } from '../courier/audience.ts'
import { giveUpLimits } from '../queue/expiry.ts'
import { messageGroupOfText } from '../queue/message-group.ts'
import { finishMarginMs, settleBatch } from '../queue/settle-batch.ts'
import { SQS_TIMEOUTS, type SqsTimeouts, sqsCallBudgetMs } from '../queue/sqs-client.ts'
import { addClassMetric, addMetric, type MetricName } from '../telemetry.ts'
import { forget, writeList } from './list-writes.ts'
import { type DynamoDbTimeouts, LEDGER_TIMEOUTS, MEMORY_DAYS } from './membership-ledger.ts'
import { planBatch } from './records.ts'
import { type AudienceSyncDeps, type Run, threw } from './run.ts'

/**
 * The audience list sync: Engage audience membership → Courier lists, in bulk, off every user's
 * ordered path (Courier takes 20 list writes a minute: one call per member would need 8.3 hours
 * for 10,000 members). Deliver hands each audience event and each user deletion to the audience
 * queue; this function coalesces a batch per list and writes it, the later Segment event winning
 * against the membership ledger. README "The audience list sync" gives the whole design.
 * https://www.courier.com/docs/reference/rate-limits
 */

export type { AudienceSyncDeps } from './run.ts'

/** Instances the list sync runs at most (the event source's MaximumConcurrency, its minimum): Courier's list budget is split over them. */
export const AUDIENCE_SYNC_INSTANCES = 2

/**
 * Kept back from the invocation's end after the last Courier write may start: recording what
 * Courier took (calls started up to one ledger call before the release), releasing the list's
 * lease, then what every batch keeps to finish (finishMarginMs), each call bounded. A slow SQS or
 * DynamoDB then costs retries, never a timed-out invocation whose whole batch comes back.
 */
export const listSyncMarginMs = (
  sqsTimeouts: SqsTimeouts = SQS_TIMEOUTS,
  ledgerTimeouts: DynamoDbTimeouts = LEDGER_TIMEOUTS,
): number => finishMarginMs(sqsTimeouts) + 3 * sqsCallBudgetMs(ledgerTimeouts)

const METRIC_OF = {
  delete: 'Delivered',
  retry: 'Retried',
  'dead-letter': 'DeadLettered',
} as const satisfies Record<string, MetricName>

export const syncAudiences = async (
  deps: AudienceSyncDeps,
  event: SQSEvent,
  context: Context,
): Promise<SQSBatchResponse> => {
  const invokedAt = Date.now()
  const invocationEnd = invokedAt + context.getRemainingTimeInMillis()
  const ledgerTimeouts = deps.ledgerTimeouts ?? LEDGER_TIMEOUTS
  // Older than the ledger remembers: the change it would have lost to may be forgotten already.
  const plan = planBatch(event.Records, invokedAt - MEMORY_DAYS * 86_400_000, deps.config.retry.baseSeconds)
  const run: Run = {
    deps,
    deadline: invocationEnd - listSyncMarginMs(deps.sqsTimeouts, ledgerTimeouts),
    invocationEnd,
    recordBy: invocationEnd - finishMarginMs(deps.sqsTimeouts) - 2 * sqsCallBudgetMs(ledgerTimeouts),
    fates: plan.fates,
    people: plan.people,
    holdBackSeconds: undefined,
  }

  // Deletions first: a change older than a deletion in this same batch is then dropped.
  for (const deletion of plan.deletions.values()) {
    try {
      await forget(run, deletion)
    } catch (error) {
      threw(run, [deletion], error)
    }
  }
  for (const [listId, list] of plan.lists) {
    await writeList(
      run,
      listId,
      list,
      subscribeCalls(list.subscribe, (m) => m.change.recipientId),
    )
  }

  const { response, settled } = await settleBatch(
    {
      sqs: deps.sqs,
      logger: deps.logger,
      queueUrl: deps.config.queue.audienceUrl as string,
      dlqUrl: deps.config.queue.dlqUrl,
      fifo: deps.config.queue.fifo,
      batchMaxBytes: deps.config.queue.batchMaxBytes,
      retryBaseSeconds: deps.config.retry.baseSeconds,
      limits: giveUpLimits(deps.config.retry, deps.maxReceiveCount),
      stage: 'audience-sync',
      invokedAt,
      idsOf: (record: SQSRecord) => {
        const read = plan.events.get(record)
        // On a FIFO DLQ: the user's group, as deliver's dead letters.
        return { messageId: read?.messageId, type: read?.type, group: messageGroupOfText(record.body) }
      },
    },
    event.Records,
    run.fates,
  )
  const counts: Record<string, number> = {}
  for (const fate of settled.values()) counts[fate.action] = (counts[fate.action] ?? 0) + 1
  deps.logger.info('audience batch', { records: event.Records.length, ...counts })
  for (const [action, count] of Object.entries(counts)) {
    addMetric(deps.metrics, METRIC_OF[action as keyof typeof METRIC_OF], count)
  }
  for (const [endpointClass, pacer] of deps.pacers?.() ?? []) {
    addClassMetric(deps.metrics, 'CourierRate', endpointClass, pacer.ratePerSecond())
  }
  return response
}
