import type { Logger } from '@aws-lambda-powertools/logger'
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs'
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import { type Random, retryDelaySeconds } from '../backoff.ts'
import type { Config } from '../config.ts'
import {
  type AudienceChange,
  type AudienceDeletion,
  audienceChangeOf,
  type ChangeOrder,
  deletionOf,
  isLater,
  membershipKey,
  subscribeCalls,
} from '../courier/audience.ts'
import type { CourierClient, SendResult } from '../courier/client.ts'
import { endpointClassOf } from '../courier/endpoint-class.ts'
import { readCourierErrorBody } from '../courier/outcome.ts'
import { type CourierRequest, pathSegment } from '../courier/routing.ts'
import { deadLetterMessage } from '../queue/dead-letter.ts'
import { fifoId, messageGroupId } from '../queue/message-group.ts'
import { SQS_TIMEOUTS, type SqsTimeouts, sqsCallBudgetMs } from '../queue/sqs-client.ts'
import { fifoFields, toSqsAttributes } from '../queue/sqs-message.ts'
import { changeVisibility, earliestReceive, type VisibilityChange } from '../queue/visibility.ts'
import { validateEvent } from '../segment/event.ts'
import { idsForLog } from '../telemetry.ts'
import { pathForLog, textForLog, userKey } from '../user-key.ts'
import { giveUpLimits, giveUpReason, receiveCountOf } from './expiry.ts'
import { DELETED_PEOPLE, LEDGER_TIMEOUTS, MEMORY_DAYS, type MembershipLedger } from './membership-ledger.ts'
import type { Pacer, PacerFor } from './pacer.ts'
import { type Decision, decide } from './retry-policy.ts'
import { finishMarginMs } from './worker.ts'

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
 *    recipients or 1 MB (courier/audience.ts on the size), every member who left with
 *    `DELETE /lists/{id}/subscriptions/{user}` (a call Courier does not rate limit). List writes
 *    are paced by their own pacer (`pacerFor('lists')`, Courier's 20 a minute split over the
 *    function's instances), never the one of the other endpoint classes.
 * 3. "The later Segment event wins", with at-least-once delivery and any arrival order: changes
 *    for one member of one list are ordered by the event's `timestamp` (a tie by messageId),
 *    inside a batch and
 *    against the latest change applied by any instance, ever, kept in a DynamoDB table (the
 *    membership ledger, lib/deliver/membership-ledger.ts). Each list's write runs under that
 *    list's lease: read the members' times, drop the changes a later event already set, write
 *    the rest to Courier, record the times of those Courier took. An older change that arrives
 *    after a newer one was applied is dropped, never written, whichever instance applied the
 *    newer one and however long ago (35 days; an older event is dead-lettered instead).
 * 4. A user deletion wins the same way: deliver hands it over too, this function marks the
 *    person deleted in the ledger before removing their subscriptions again, drops changes older
 *    than the mark and checks each subscribe against the marks after Courier answered it.
 * 5. A record that keeps failing is dead-lettered with its reason after MAX_EVENT_AGE_SECONDS
 *    or on its last allowed receive, as deliver does (lib/deliver/expiry.ts).
 *
 * The audience queue carries the Segment event unchanged, so a record given up on lands in the
 * DLQ as a normal event with its reason, and `npm run redrive` replays it through deliver, which
 * hands it to this queue again.
 */

/** Instances the list sync runs at most (the event source's MaximumConcurrency, its minimum): Courier's list budget is split over them. */
export const AUDIENCE_SYNC_INSTANCES = 2

/**
 * Kept back from the invocation's end after the last Courier write may start: recording what
 * Courier took (calls started up to one ledger call before the release), releasing the list's
 * lease, then what deliver keeps to finish (the dead letters and visibilities,
 * lib/deliver/worker.ts finishMarginMs), each call bounded (lib/queue/sqs-client.ts). A slow SQS
 * or DynamoDB then costs retries, never a timed-out invocation whose whole batch comes back.
 */
export const listSyncMarginMs = (
  sqsTimeouts: SqsTimeouts = SQS_TIMEOUTS,
  ledgerTimeouts: SqsTimeouts = LEDGER_TIMEOUTS,
): number => finishMarginMs(sqsTimeouts) + 3 * sqsCallBudgetMs(ledgerTimeouts)

/**
 * The longest an instance waits for a list another instance is writing: a holder keeps the lease
 * for one paced write (a Courier call of at most COURIER_TIMEOUT_MS) or one round of unsubscribes.
 * Waiting longer would hold up the batch's other lists behind it.
 */
const LEASE_WAIT_MS = 30_000

/** Records whose write was not attempted before the deadline come back almost at once. */
const UNSTARTED_DELAY_SECONDS = 1
/** Records of a list another instance is writing come back once it is likely done. */
const LIST_BUSY_DELAY_SECONDS = 5

export interface AudienceSyncDeps {
  readonly config: Config
  readonly sqs: SQSClient
  readonly courier: CourierClient
  readonly logger: Logger
  readonly pacerFor: PacerFor
  readonly ledger: MembershipLedger
  readonly sqsTimeouts?: SqsTimeouts
  /** The queue's maxReceiveCount (default QUEUE_SETTINGS.maxReceiveCount). */
  readonly maxReceiveCount?: number
  readonly random?: Random
}

/** One member of one list, with every record that spoke about it in this batch. */
interface Membership {
  change: AudienceChange
  readonly records: SQSRecord[]
}

/** One deleted person, with every record of their deletion in this batch. */
interface Deletion {
  deletion: AudienceDeletion
  readonly records: SQSRecord[]
}

/** Records that share one fate: a membership's, a deletion's. */
type Carrier = { readonly records: readonly SQSRecord[] }

/** The most receives among a group's records: the backoff step of their shared retry. */
const receivesOf = (group: readonly Carrier[]): number =>
  Math.max(...group.flatMap((carrier) => carrier.records.map(receiveCountOf)))

type RecordFate = { readonly decision: Decision; readonly reason?: string }

/** What a record asks of the list sync: a membership change, a deletion, or why it cannot be read. */
type Read = { readonly change: AudienceChange } | { readonly deletion: AudienceDeletion } | string

const readRecord = (record: SQSRecord): Read => {
  let value: unknown
  try {
    value = JSON.parse(record.body)
  } catch {
    return 'message body is not JSON'
  }
  const validation = validateEvent(value)
  if (!validation.ok) return `not a valid Segment event: ${validation.error}`
  const change = audienceChangeOf(validation.event)
  if (change !== undefined) return { change }
  const deletion = deletionOf(validation.event)
  return deletion === undefined ? 'not an Engage audience event' : { deletion }
}

export const syncAudiences = async (
  deps: AudienceSyncDeps,
  event: SQSEvent,
  context: Context,
): Promise<SQSBatchResponse> => {
  const invokedAt = Date.now()
  const invocationEnd = invokedAt + context.getRemainingTimeInMillis()
  const deadline = invocationEnd - listSyncMarginMs(deps.sqsTimeouts)
  // Recording starts no ledger call after this: the last one and the release still fit.
  const recordBy = invocationEnd - finishMarginMs(deps.sqsTimeouts) - 2 * sqsCallBudgetMs(LEDGER_TIMEOUTS)
  // Older than the ledger remembers: the change it would have lost to may be forgotten already.
  const forgottenBefore = invokedAt - MEMORY_DAYS * 86_400_000
  const fates = new Map<SQSRecord, RecordFate>()
  const memberships = new Map<string, Membership>()
  const deletions = new Map<string, Deletion>()

  for (const record of event.Records) {
    const read = readRecord(record)
    if (typeof read === 'string') {
      fates.set(record, { decision: { action: 'dead-letter', reason: read, status: 0 } })
      continue
    }
    if ('deletion' in read) {
      const known = deletions.get(read.deletion.recipientId)
      if (known === undefined)
        deletions.set(read.deletion.recipientId, { deletion: read.deletion, records: [record] })
      else {
        known.records.push(record)
        if (isLater(read.deletion, known.deletion)) known.deletion = read.deletion
      }
      continue
    }
    const { change } = read
    if (change.at < forgottenBefore) {
      const reason = `the event is older than the membership ledger's ${MEMORY_DAYS}-day memory: applying it could undo a later change already forgotten; redrive after checking the member's list`
      fates.set(record, { decision: { action: 'dead-letter', reason, status: 0 } })
      continue
    }
    // Inside a batch the later event wins at once; against earlier batches, the ledger decides.
    const key = membershipKey(change)
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
  const settle = (group: readonly Carrier[], fate: RecordFate) => {
    for (const membership of group) {
      for (const record of membership.records) fates.set(record, fate)
    }
  }
  /** The membership ledger could not be read or written: the records are retried with backoff, never dropped. */
  const ledgerFailed = (group: readonly Carrier[], error: unknown, listId: string) => {
    deps.logger.warn('membership ledger failed; the records are retried', { listId, error: error as Error })
    const { baseSeconds, maxSeconds } = deps.config.retry
    retryAll(
      group,
      retryDelaySeconds(receivesOf(group), baseSeconds, maxSeconds, deps.random),
      `membership ledger: ${error instanceof Error ? error.message : String(error)}`,
    )
  }
  const retryAll = (group: readonly Carrier[], delaySeconds: number, reason: string) =>
    settle(group, { decision: { action: 'retry', delaySeconds, holdBatch: false }, reason })

  /** Courier's answer to one list write → the fate of the records it carried. */
  const settleWrite = (
    group: readonly Carrier[],
    request: CourierRequest,
    result: SendResult,
    pacer: Pacer | undefined,
  ) => {
    // Unsubscribing someone who is not on the list is done.
    const outcome =
      request.method === 'DELETE' && result.status === 404
        ? ({ kind: 'delivered', status: 404 } as const)
        : result.outcome
    const decision = decide(
      outcome,
      receivesOf(group),
      deps.config.retry,
      deps.random,
      pacer?.holdBackSeconds(),
    )
    const courierType = readCourierErrorBody(result.body)?.type
    const reason =
      outcome.kind === 'delivered'
        ? undefined
        : textForLog(
            `${outcome.kind === 'rate-limited' ? 'rate limited' : outcome.reason} (${request.method} ${pathForLog(request.path)})`,
          )
    // Who the write was for, keyed, so a trace of one person or one event finds it (lib/user-key.ts).
    const who = group.flatMap((carrier) =>
      carrier.records.map(readRecord).flatMap((read) => {
        if (typeof read === 'string') return []
        const one = 'change' in read ? read.change : read.deletion
        return [{ messageId: one.messageId, user: userKey(one.recipientId) }]
      }),
    )
    deps.logger.info('list write', {
      method: request.method,
      path: pathForLog(request.path),
      members: group.length,
      ...idsForLog(who.map((one) => one.messageId)),
      users: idsForLog(who.map((one) => one.user)).messageIds,
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
    return decision.action === 'delete'
  }

  /** DELETE /lists/{id}/subscriptions/{member} for each, a few at a time; resolves those Courier took. */
  const unsubscribeEach = async (listPath: string, members: readonly Membership[]) => {
    const queue = [...members]
    const done: Membership[] = []
    const worker = async () => {
      for (let m = queue.shift(); m !== undefined; m = queue.shift()) {
        if (heldBack([m])) continue
        if (Date.now() >= deadline) {
          retryAll([m], UNSTARTED_DELAY_SECONDS, 'not attempted before the deadline')
          continue
        }
        const request: CourierRequest = {
          method: 'DELETE',
          path: `${listPath}/${pathSegment(m.change.recipientId) as string}`,
        }
        if (settleWrite([m], request, await deps.courier.send(request, { deadline }), undefined)) done.push(m)
      }
    }
    await Promise.all(
      Array.from({ length: Math.min(deps.config.delivery.concurrency, queue.length) }, worker),
    )
    return done
  }

  /** Whether a deletion of this member, later than the change, is in the ledger. */
  const deletedAfter = (deleted: ReadonlyMap<string, ChangeOrder>, m: Membership) => {
    const deletion = deleted.get(m.change.recipientId)
    return deletion !== undefined && !isLater(m.change, deletion)
  }

  /**
   * Holding the list's lease: drops the members a later event already set (the ledger's times) or
   * a later deletion removed, lets `apply` write the others to Courier, and records those Courier
   * took. A deletion that lands while a subscribe is in flight is seen after it (the deletion is
   * marked before its own DELETE, the subscribe checked after its POST), and the subscription is
   * removed again; so is that of an older enter met on a retry, in case an earlier attempt wrote
   * it. Records of a list another instance holds too long, or of a ledger that cannot be reached,
   * come back.
   */
  const underLease = async (
    listId: string,
    listPath: string,
    group: readonly Membership[],
    apply: (fresh: readonly Membership[]) => Promise<readonly Membership[]>,
  ) => {
    try {
      const leased = await deps.ledger.withList(
        listId,
        { waitUntil: Math.min(deadline, Date.now() + LEASE_WAIT_MS), holdUntil: invocationEnd },
        async () => {
          const members = group.map((m) => m.change.recipientId)
          const [applied, deleted] = await Promise.all([
            deps.ledger.lastApplied(listId, members),
            deps.ledger.lastApplied(DELETED_PEOPLE, members),
          ])
          const fresh: Membership[] = []
          const stale: Membership[] = []
          const undo: Membership[] = []
          for (const membership of group) {
            const last = applied.get(membership.change.recipientId)
            if (deletedAfter(deleted, membership)) {
              ;(membership.change.subscribed ? undo : stale).push(membership)
            } else if (last !== undefined && !isLater(membership.change, last)) {
              // The same change again (a retry) is applied again: only a later one supersedes it.
              stale.push(membership)
            } else fresh.push(membership)
          }
          // A later event for this member of this list was already written: this one lost.
          settle(stale, { decision: { action: 'delete' }, reason: 'superseded by a later event' })
          const done = fresh.length === 0 ? [] : await apply(fresh)
          if (done.some((m) => m.change.subscribed)) {
            const deletedNow = await deps.ledger.lastApplied(
              DELETED_PEOPLE,
              done.map((m) => m.change.recipientId),
            )
            undo.push(...done.filter((m) => deletedAfter(deletedNow, m)))
          }
          await deps.ledger.recordApplied(
            listId,
            done.map(({ change }) => ({
              member: change.recipientId,
              at: change.at,
              subscribed: change.subscribed,
              messageId: change.messageId,
            })),
            recordBy,
          )
          const removable = undo.filter((m) => pathSegment(m.change.recipientId) !== undefined)
          if (removable.length > 0) {
            deps.logger.info('removing subscriptions of people deleted after the change', {
              listId,
              members: removable.length,
            })
            await unsubscribeEach(listPath, removable)
          }
        },
      )
      if (!leased.acquired) {
        retryAll(
          group,
          LIST_BUSY_DELAY_SECONDS,
          'list busy: another instance of the list sync was writing it',
        )
      }
    } catch (error) {
      // Courier may have taken the write: it is repeated on the retry, which is harmless.
      ledgerFailed(group, error, listId)
    }
  }

  /**
   * A deleted person: marked in the ledger first, then every list subscription removed
   * (`DELETE /profiles/{id}/lists`, as deliver did already; a repeat is harmless, 404 is done).
   * Marking first means a subscribe of an older change that reaches Courier after this DELETE is
   * seen by its own check and removed (underLease).
   */
  const forget = async ({ deletion, records }: Deletion) => {
    const group = [{ records }]
    const member = pathSegment(deletion.recipientId)
    if (member === undefined) {
      // Deliver dead-letters such a deletion with its reason; there is nothing to mark by path.
      settle(group, { decision: { action: 'delete' }, reason: 'no path for this userId' })
      return
    }
    if (heldBack(group)) return
    try {
      await deps.ledger.recordApplied(
        DELETED_PEOPLE,
        [{ member: deletion.recipientId, at: deletion.at, subscribed: false, messageId: deletion.messageId }],
        recordBy,
      )
    } catch (error) {
      ledgerFailed(group, error, DELETED_PEOPLE)
      return
    }
    const request: CourierRequest = { method: 'DELETE', path: `/profiles/${member}/lists` }
    const pacer = deps.pacerFor(endpointClassOf(request.path))
    const slot = await pacer.acquire()
    if (Date.now() >= deadline) {
      retryAll(group, UNSTARTED_DELAY_SECONDS, 'not attempted before the deadline')
      return
    }
    const result = await deps.courier.send(request, { deadline })
    if (slot !== undefined) pacer.report(slot, result.outcome)
    settleWrite(group, request, result, pacer)
  }

  const heldBack = (group: readonly Carrier[]) => {
    if (holdBackSeconds === undefined) return false
    settle(group, {
      decision: { action: 'retry', delaySeconds: holdBackSeconds, holdBatch: true },
      reason: 'held back: Courier rate-limited list writes',
    })
    return true
  }

  // Deletions first: a change older than a deletion in this same batch is then dropped.
  for (const deletion of deletions.values()) await forget(deletion)

  for (const [listId, plan] of lists) {
    // `{key}-{id}` always holds a '-', so it is never a dot-segment; a member id may be one.
    const path = `/lists/${encodeURIComponent(listId)}/subscriptions`
    for (const chunk of subscribeCalls(plan.subscribe, (m) => m.change.recipientId)) {
      if (heldBack(chunk)) continue
      // List POSTs wait for the lists class's pacer and report Courier's answer to it, so the rate
      // it keeps (from Courier's published 20 a minute) also learns from a 429.
      const pacer = deps.pacerFor('lists')
      const slot = await pacer.acquire()
      if (Date.now() >= deadline) {
        retryAll(chunk, UNSTARTED_DELAY_SECONDS, 'not attempted before the deadline')
        continue
      }
      await underLease(listId, path, chunk, async (fresh) => {
        const recipients = fresh.map((m) => ({ recipientId: m.change.recipientId }))
        // POST adds without touching other subscriptions and creates a missing list.
        // https://www.courier.com/docs/reference/lists/post-subscribe
        const request: CourierRequest = { method: 'POST', path, body: { recipients } }
        const result = await deps.courier.send(request, { deadline })
        if (slot !== undefined) pacer.report(slot, result.outcome)
        return settleWrite(fresh, request, result, pacer) ? fresh : []
      })
    }
    const unsubscribe: Membership[] = []
    for (const m of plan.unsubscribe) {
      if (pathSegment(m.change.recipientId) !== undefined) unsubscribe.push(m)
      else {
        // '.' or '..' would resolve away (DELETE /lists/{id}/subscriptions/.. is DELETE /lists/{id}).
        const reason = `member ${userKey(m.change.recipientId)} cannot be a path segment: not unsubscribed`
        settle([m], { decision: { action: 'dead-letter', reason, status: 0 }, reason })
      }
    }
    if (unsubscribe.length === 0 || heldBack(unsubscribe)) continue
    if (Date.now() >= deadline) {
      retryAll(unsubscribe, UNSTARTED_DELAY_SECONDS, 'not attempted before the deadline')
      continue
    }
    // Unsubscribes are one call each and not rate limited: a few at a time, under one lease.
    await underLease(listId, path, unsubscribe, (fresh) => unsubscribeEach(path, fresh))
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
  const limits = giveUpLimits(deps.config.retry, deps.maxReceiveCount)
  const now = Date.now()
  const changes: VisibilityChange[] = []
  const counts: Record<string, number> = {}
  for (const record of records) {
    const fate = fates.get(record) ?? {
      decision: { action: 'retry', delaySeconds: UNSTARTED_DELAY_SECONDS, holdBatch: false } as const,
    }
    let { decision } = fate
    if (decision.action === 'retry') {
      const reason = giveUpReason(record, receiveCountOf(record), limits, fate.reason, now)
      if (reason !== undefined) decision = { action: 'dead-letter', reason, status: 0 }
    }
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
