import type { Logger } from '@aws-lambda-powertools/logger'
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs'
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import type { Random } from '../backoff.ts'
import type { Config } from '../config.ts'
import {
  type AudienceChange,
  audienceChangeOf,
  isLater,
  LIST_SUBSCRIBE_MAX_RECIPIENTS,
  membershipKey,
} from '../courier/audience.ts'
import type { CourierClient } from '../courier/client.ts'
import { readCourierErrorBody } from '../courier/outcome.ts'
import { type CourierRequest, pathSegment } from '../courier/routing.ts'
import { deadLetterMessage } from '../queue/dead-letter.ts'
import { fifoId, messageGroupId } from '../queue/message-group.ts'
import { fifoFields, toSqsAttributes } from '../queue/sqs-message.ts'
import { changeVisibility, earliestReceive, type VisibilityChange } from '../queue/visibility.ts'
import { validateEvent } from '../segment/event.ts'
import { receiveCountOf } from './expiry.ts'
import type { PacerFor } from './pacer.ts'
import { type Decision, decide } from './retry-policy.ts'

/**
 * The audience list sync: Engage audience membership → Courier lists, in bulk, off every user's
 * ordered path.
 *
 * Why this shape. A new Engage audience sends one call per member, and Courier takes 20 list
 * writes a minute (https://www.courier.com/docs/reference/rate-limits): one call per member, as
 * Courier's own Actions destination makes, needs 8.3 hours for 10,000 members. Written in the
 * deliver worker, a list write would also sit in the user's ordered FIFO group, and a 429 on it
 * would hold back that user's identify and track behind it. So:
 *
 * 1. deliver sends the audience event to `/inbound/segment` as any other (the profile gets the
 *    trait, as with Courier's classic destination), then hands the event's exact text to a
 *    separate standard SQS queue, the *audience queue* (one SendMessage; a failure retries the
 *    record, and a repeat is harmless). The user's later events go on at once.
 * 2. This function drains the audience queue in big batches (up to 1,000 records gathered for up
 *    to 20 s by the event source; locally the poller does the same), coalesces them and writes
 *    per list: every member who entered in one `POST /lists/{id}/subscriptions` per 1,000
 *    recipients (courier/audience.ts on the size), every member who left with
 *    `DELETE /lists/{id}/subscriptions/{user}` (a call Courier does not rate limit). List writes
 *    are paced by their own pacer (`pacerFor('lists')`, Courier's 20 a minute split over the
 *    function's instances), never the one of the other endpoint classes.
 * 3. "The later Segment event wins", with at-least-once delivery and any arrival order: changes
 *    for one member of one list are compared by the event's `timestamp`, inside a batch and
 *    against the latest change this instance applied (`AppliedChanges`). An older change that
 *    arrives after a newer one was applied is dropped, never written. Limit, stated rather than
 *    hidden: that memory is per warm instance (at most AUDIENCE_SYNC_INSTANCES of them), so a
 *    pair split across two instances, or across a cold start, falls back to arrival order. The
 *    20 s gathering window puts the pairs Segment sends close together into one batch.
 *
 * The audience queue carries the Segment event unchanged, so a record given up on lands in the
 * DLQ as a normal event with its reason, and `npm run redrive` replays it through deliver, which
 * hands it to this queue again.
 */

/** Instances the list sync runs at most (the event source's MaximumConcurrency, its minimum): Courier's list budget is split over them. */
export const AUDIENCE_SYNC_INSTANCES = 2

/** Kept back from the invocation deadline to set visibilities and answer. */
const FINISH_MARGIN_MS = 1_500
/** Records whose write was not attempted before the deadline come back almost at once. */
const UNSTARTED_DELAY_SECONDS = 1

/** The latest change applied per member of a list in this instance, bounded (oldest entries forgotten first). */
export interface AppliedChanges {
  get(key: string): number | undefined
  set(key: string, at: number): void
}

export const createAppliedChanges = (max = 200_000): AppliedChanges => {
  const applied = new Map<string, number>()
  return {
    get: (key) => applied.get(key),
    set: (key, at) => {
      applied.delete(key)
      applied.set(key, Math.max(at, applied.get(key) ?? at))
      if (applied.size > max) applied.delete(applied.keys().next().value as string)
    },
  }
}

export interface AudienceSyncDeps {
  readonly config: Config
  readonly sqs: SQSClient
  readonly courier: CourierClient
  readonly logger: Logger
  readonly pacerFor: PacerFor
  readonly applied: AppliedChanges
  readonly random?: Random
}

/** One member of one list, with every record that spoke about it in this batch. */
interface Membership {
  change: AudienceChange
  readonly records: SQSRecord[]
}

type RecordFate = { readonly decision: Decision; readonly reason?: string }

const readChange = (record: SQSRecord): AudienceChange | string => {
  let value: unknown
  try {
    value = JSON.parse(record.body)
  } catch {
    return 'message body is not JSON'
  }
  const validation = validateEvent(value)
  if (!validation.ok) return `not a valid Segment event: ${validation.error}`
  return audienceChangeOf(validation.event) ?? 'not an Engage audience event'
}

export const syncAudiences = async (
  deps: AudienceSyncDeps,
  event: SQSEvent,
  context: Context,
): Promise<SQSBatchResponse> => {
  const invokedAt = Date.now()
  const deadline = invokedAt + context.getRemainingTimeInMillis() - FINISH_MARGIN_MS
  const fates = new Map<SQSRecord, RecordFate>()
  const memberships = new Map<string, Membership>()

  for (const record of event.Records) {
    const change = readChange(record)
    if (typeof change === 'string') {
      fates.set(record, { decision: { action: 'dead-letter', reason: change, status: 0 } })
      continue
    }
    const key = membershipKey(change)
    const applied = deps.applied.get(key)
    if (applied !== undefined && change.at < applied) {
      // A later event for this member of this list was already written: this one lost.
      fates.set(record, { decision: { action: 'delete' }, reason: 'superseded by a later event' })
      continue
    }
    const membership = memberships.get(key)
    if (membership === undefined) memberships.set(key, { change, records: [record] })
    else {
      membership.records.push(record)
      if (isLater(change, membership.change)) membership.change = change
    }
  }

  // Per list: who is in, who is out.
  const lists = new Map<string, { subscribe: Membership[]; unsubscribe: Membership[] }>()
  for (const membership of memberships.values()) {
    const { listId, subscribed } = membership.change
    const plan = lists.get(listId) ?? { subscribe: [], unsubscribe: [] }
    ;(subscribed ? plan.subscribe : plan.unsubscribe).push(membership)
    lists.set(listId, plan)
  }

  let holdBackSeconds: number | undefined
  const settle = (group: readonly Membership[], fate: RecordFate) => {
    for (const membership of group) {
      if (fate.decision.action === 'delete') {
        deps.applied.set(membershipKey(membership.change), membership.change.at)
      }
      for (const record of membership.records) fates.set(record, fate)
    }
  }
  const write = async (group: readonly Membership[], request: CourierRequest, pace: boolean) => {
    if (holdBackSeconds !== undefined) {
      settle(group, {
        decision: { action: 'retry', delaySeconds: holdBackSeconds, holdBatch: true },
        reason: 'held back: Courier rate-limited list writes',
      })
      return
    }
    // List POSTs wait for the lists class's pacer and report Courier's answer to it, so the rate
    // it keeps (from Courier's published 20 a minute) also learns from a 429.
    const pacer = pace ? deps.pacerFor('lists') : undefined
    const slot = await pacer?.acquire()
    if (Date.now() >= deadline) {
      settle(group, {
        decision: { action: 'retry', delaySeconds: UNSTARTED_DELAY_SECONDS, holdBatch: false },
        reason: 'not attempted before the deadline',
      })
      return
    }
    const result = await deps.courier.send(request, { deadline })
    if (pacer !== undefined && slot !== undefined) pacer.report(slot, result.outcome)
    // Unsubscribing someone who is not on the list is done.
    const outcome =
      request.method === 'DELETE' && result.status === 404
        ? ({ kind: 'delivered', status: 404 } as const)
        : result.outcome
    const receives = Math.max(...group.flatMap((m) => m.records.map(receiveCountOf)))
    const decision = decide(outcome, receives, deps.config.retry, deps.random, pacer?.holdBackSeconds())
    const courierType = readCourierErrorBody(result.body)?.type
    const reason =
      outcome.kind === 'delivered'
        ? undefined
        : `${outcome.kind === 'rate-limited' ? 'rate limited' : outcome.reason} (${request.method} ${request.path})`
    deps.logger.info('list write', {
      method: request.method,
      path: request.path,
      members: group.length,
      status: result.status,
      outcome: outcome.kind,
      ...(decision.action === 'retry' ? { delaySeconds: decision.delaySeconds } : {}),
      ...(courierType === undefined ? {} : { courierType }),
    })
    if (decision.action === 'retry' && decision.holdBatch) holdBackSeconds = decision.delaySeconds
    settle(group, {
      decision:
        decision.action === 'dead-letter' ? { ...decision, reason: reason ?? decision.reason } : decision,
      ...(reason === undefined ? {} : { reason }),
    })
  }

  for (const [listId, plan] of lists) {
    // `{key}-{id}` always holds a '-', so it is never a dot-segment; a member id may be one.
    const path = `/lists/${encodeURIComponent(listId)}/subscriptions`
    for (let i = 0; i < plan.subscribe.length; i += LIST_SUBSCRIBE_MAX_RECIPIENTS) {
      const chunk = plan.subscribe.slice(i, i + LIST_SUBSCRIBE_MAX_RECIPIENTS)
      const recipients = chunk.map((m) => ({ recipientId: m.change.recipientId }))
      // POST adds without touching other subscriptions and creates a missing list.
      // https://www.courier.com/docs/reference/lists/post-subscribe
      await write(chunk, { method: 'POST', path, body: { recipients } }, true)
    }
    // Unsubscribes are one call each and not rate limited: a few at a time.
    const queue = [...plan.unsubscribe]
    const worker = async () => {
      for (let m = queue.shift(); m !== undefined; m = queue.shift()) {
        const member = pathSegment(m.change.recipientId)
        if (member === undefined) {
          // '.' or '..' would resolve away (DELETE /lists/{id}/subscriptions/.. is DELETE /lists/{id}).
          const reason = `member id ${JSON.stringify(m.change.recipientId)} cannot be a path segment: not unsubscribed`
          settle([m], { decision: { action: 'dead-letter', reason, status: 0 }, reason })
          continue
        }
        await write([m], { method: 'DELETE', path: `${path}/${member}` }, false)
      }
    }
    await Promise.all(
      Array.from({ length: Math.min(deps.config.delivery.concurrency, queue.length) }, worker),
    )
  }

  return finish(deps, event.Records, fates, invokedAt)
}

/** The message group of a queued event's text (lib/queue/message-group.ts). */
const groupOfBody = (body: string): string => {
  try {
    return messageGroupId(JSON.parse(body), body)
  } catch {
    return messageGroupId(undefined, body)
  }
}

const finish = async (
  deps: AudienceSyncDeps,
  records: readonly SQSRecord[],
  fates: ReadonlyMap<SQSRecord, RecordFate>,
  invokedAt: number,
): Promise<SQSBatchResponse> => {
  const queueUrl = deps.config.queue.audienceUrl as string
  const changes: VisibilityChange[] = []
  const counts: Record<string, number> = {}
  for (const record of records) {
    const fate = fates.get(record) ?? {
      decision: { action: 'retry', delaySeconds: UNSTARTED_DELAY_SECONDS, holdBatch: false } as const,
    }
    let { decision } = fate
    if (decision.action === 'dead-letter') {
      try {
        const message = deadLetterMessage(
          record.body,
          { stage: 'audience-sync', reason: decision.reason, status: decision.status },
          deps.config.queue.batchMaxBytes,
          // On a FIFO DLQ: the user's group, deduplicated per receive (as deliver's dead letters).
          { group: groupOfBody(record.body), deduplicationId: fifoId('audience', record.messageId) },
        )
        await deps.sqs.send(
          new SendMessageCommand({
            QueueUrl: deps.config.queue.dlqUrl,
            MessageBody: message.body,
            MessageAttributes: toSqsAttributes(message.attributes),
            ...fifoFields(message, deps.config.queue.fifo),
          }),
        )
      } catch (error) {
        deps.logger.warn('dead-lettering failed; the record stays queued', { error: error as Error })
        decision = { action: 'retry', delaySeconds: deps.config.retry.baseSeconds, holdBatch: false }
      }
    }
    counts[decision.action] = (counts[decision.action] ?? 0) + 1
    if (decision.action === 'retry') {
      changes.push({
        id: record.messageId,
        receiptHandle: record.receiptHandle,
        seconds: decision.delaySeconds,
      })
    }
  }
  deps.logger.info('audience batch', { records: records.length, ...counts })
  // Each delay capped at what is left of the 12 hours SQS allows from the receive (the event
  // source gathers this queue's batches for up to 20 s before invoking).
  await changeVisibility(deps.sqs, queueUrl, changes, deps.logger, {
    receivedAtMs: earliestReceive(invokedAt),
  })
  return { batchItemFailures: changes.map((change) => ({ itemIdentifier: change.id })) }
}
