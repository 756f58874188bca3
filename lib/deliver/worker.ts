import type { Logger } from '@aws-lambda-powertools/logger'
import type { Metrics } from '@aws-lambda-powertools/metrics'
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs'
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import type { Random } from '../backoff.ts'
import type { Config } from '../config.ts'
import { audienceChangeOf, deletionOf } from '../courier/audience.ts'
import type { CourierClient, SendResult } from '../courier/client.ts'
import { CourierError } from '../courier/courier-error.ts'
import { endpointClassOf } from '../courier/endpoint-class.ts'
import { type Outcome, readCourierErrorBody } from '../courier/outcome.ts'
import { type CourierRequest, routeEvent } from '../courier/routing.ts'
import { mergeTenant } from '../courier/tenant.ts'
import { deadLetterMessage, plainDeadLetter } from '../queue/dead-letter.ts'
import { fifoId, messageGroupId } from '../queue/message-group.ts'
import { SQS_TIMEOUTS, type SqsTimeouts, sqsCallBudgetMs } from '../queue/sqs-client.ts'
import { fifoFields, toSqsAttributes } from '../queue/sqs-message.ts'
import { changeVisibility, earliestReceive, type VisibilityChange } from '../queue/visibility.ts'
import { type SegmentEvent, validateEvent } from '../segment/event.ts'
import type { Identities } from '../segment/identity.ts'
import { addClassMetric, addMetric } from '../telemetry.ts'
import { pathForLog, personKey, textForLog } from '../user-key.ts'
import { giveUpLimits, giveUpReason, receiveCountOf } from './expiry.ts'
import type { Pacer, PacerFor } from './pacer.ts'
import { type Decision, decide } from './retry-policy.ts'

/**
 * The worker: drains one SQS batch into Courier. Every record ends in exactly one of
 * delivered (deleted by the event source), retried later (reported in batchItemFailures with
 * its visibility set to the policy's delay) or dead-lettered with a reason. A per-record
 * failure never throws: only a bug can fail the whole batch.
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
 */

export interface DeliverDeps {
  readonly config: Config
  readonly sqs: SQSClient
  readonly courier: CourierClient
  readonly logger: Logger
  readonly metrics?: Metrics | undefined
  /** The pacer of each endpoint class in this instance (pacer.ts): the learnt rate lives there. */
  readonly pacerFor: PacerFor
  /** The pacers in use, for the CourierRate metric. */
  readonly pacers?: () => readonly (readonly [string, Pacer])[]
  readonly random?: Random
  /** The timeouts `sqs` was created with: they size the margin kept to finish (default SQS_TIMEOUTS). */
  readonly sqsTimeouts?: SqsTimeouts
  /** The queue's maxReceiveCount (default QUEUE_SETTINGS.maxReceiveCount). */
  readonly maxReceiveCount?: number
}

export type RecordOutcome =
  | 'delivered'
  | 'skipped'
  | 'dead-lettered'
  | 'retried'
  | 'rate-limited'
  | 'held-back'
  /** Not attempted: an earlier record of the same user is being retried (the FIFO rule). */
  | 'waiting'

interface RecordResult {
  readonly outcome: RecordOutcome
  readonly event?: SegmentEvent | undefined
  readonly delaySeconds?: number
  readonly status?: number | undefined
  readonly reason?: string
  readonly holdBatch?: boolean
  readonly courierType?: string | undefined
}

/**
 * Kept back from the invocation's end to finish: a hand-over to the audience queue begun just
 * before the deadline, then the dead letters (sent in parallel), then the visibilities (set in
 * parallel), each as long as one SQS call can take with the SDK's retry (lib/queue/sqs-client.ts),
 * and half a second to answer. A slow SQS then costs retries, never a timed-out invocation whose
 * whole batch comes back (and burns a receive).
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
 */
export const finishMarginMs = (timeouts: SqsTimeouts = SQS_TIMEOUTS): number =>
  3 * sqsCallBudgetMs(timeouts) + 500
/** Records not attempted before the deadline come back almost at once. */
const UNSTARTED_DELAY_SECONDS = 1

const latencyMs = (event: SegmentEvent): number | undefined => {
  const since = Date.parse(event.receivedAt ?? event.timestamp ?? '')
  return Number.isFinite(since) ? Math.max(0, Date.now() - since) : undefined
}

type ParsedRecord = { readonly event: SegmentEvent; readonly ids: Identities } | { readonly error: string }

/**
 * Each record's body is parsed and validated once per invocation: grouping (standard queues),
 * delivery and the log line all read the same result.
 */
const parsedRecords = new WeakMap<SQSRecord, ParsedRecord>()

const parseRecord = (record: SQSRecord): ParsedRecord => {
  let parsed = parsedRecords.get(record)
  if (parsed === undefined) {
    parsed = parseRecordBody(record)
    parsedRecords.set(record, parsed)
  }
  return parsed
}

const parseRecordBody = (record: SQSRecord): ParsedRecord => {
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

const eventOf = (record: SQSRecord): SegmentEvent | undefined => {
  const parsed = parseRecord(record)
  return 'event' in parsed ? parsed.event : undefined
}

interface Sent {
  readonly outcome: Outcome
  readonly error: CourierError | undefined
  /** After a 429: the wait the class's cut rate implies (Pacer.holdBackSeconds). */
  readonly holdBackSeconds?: number | undefined
}

/** A call not made: the batch was rate-limited while it waited its turn, or the deadline came first. */
interface Unsent {
  readonly unsent: 'held' | 'late'
}

const HELD_BACK = 'held back: Courier rate-limited this batch'
const NOT_STARTED = 'not attempted before the deadline'

/**
 * One call through its endpoint class's pacer, its answer reported back to move the learnt rate.
 * A call still waiting its turn when `held` aborts (another record of the batch met a 429) is
 * not sent into the refusal; none waits past the deadline.
 */
const pacedSend = async (
  deps: DeliverDeps,
  request: CourierRequest,
  deadline: number,
  held: AbortSignal | undefined,
): Promise<{ result: SendResult; holdBackSeconds: number | undefined } | Unsent> => {
  const pacer = deps.pacerFor(endpointClassOf(request.path))
  const timeout = AbortSignal.timeout(Math.max(0, deadline - Date.now()))
  const slot = await pacer.acquire(held === undefined ? timeout : AbortSignal.any([held, timeout]))
  if (slot === undefined) return { unsent: held?.aborted === true ? 'held' : 'late' }
  // A call the invocation's deadline cuts shorter than COURIER_TIMEOUT_MS may time out for that
  // reason alone: such a timeout says nothing about Courier, so it does not move the rate.
  const cutShort = deadline - Date.now() < deps.config.courier.timeoutMs
  const result = await deps.courier.send(request, { deadline })
  if (!(cutShort && result.outcome.kind === 'transient' && result.status === undefined)) {
    pacer.report(slot, result.outcome)
  }
  return { result, holdBackSeconds: pacer.holdBackSeconds() }
}

const DELIVERED: Sent = { outcome: { kind: 'delivered', status: 202 }, error: undefined }

/** A failed answer, its reason naming the call when it was not the inbound one (a DLQ reader needs to know which). */
const failure = (request: CourierRequest, result: SendResult, holdBackSeconds?: number): Sent => {
  // Reasons are logged and kept with dead letters: paths and quoted ids keyed (lib/user-key.ts).
  const { outcome } = result
  const said = 'reason' in outcome ? { ...outcome, reason: textForLog(outcome.reason) } : outcome
  const named =
    request.path === '/inbound/segment' || !('reason' in said)
      ? said
      : { ...said, reason: `${said.reason} (${request.method} ${pathForLog(request.path)})` }
  const { message, type } = readCourierErrorBody(result.body) ?? {}
  return {
    outcome: named,
    holdBackSeconds,
    error:
      named.kind === 'delivered'
        ? undefined
        : new CourierError(named, {
            courierMessage: message === undefined ? undefined : textForLog(message),
            courierType: type,
            cause: result.cause,
          }),
  }
}

/** Which failure of several decides the record: one that says "later" wins over one that says "never". */
const SEVERITY: Readonly<Record<Outcome['kind'], number>> = {
  'rate-limited': 0,
  transient: 1,
  auth: 2,
  permanent: 3,
  delivered: 4,
}

/**
 * The tenant read-modify-writes of this instance, one per tenant at a time. Users of one group sit
 * in different message groups and are delivered side by side; two GET-merge-PUTs of one tenant
 * interleaved would each write back what the other had not seen, and the later PUT would drop the
 * other's traits. Courier offers no conditional write to prevent it across instances (its 409,
 * when it answers one, is retried); inside an instance this queue does.
 */
const tenantWrites = new Map<string, Promise<unknown>>()

const oneTenantWriteAtATime = async <T>(path: string, work: () => Promise<T>): Promise<T> => {
  const before = tenantWrites.get(path) ?? Promise.resolve()
  const mine = before.then(work, work)
  const settled = mine.catch(() => undefined)
  tenantWrites.set(path, settled)
  try {
    return await mine
  } finally {
    if (tenantWrites.get(path) === settled) tenantWrites.delete(path)
  }
}

/**
 * One routed call. A tenant upsert is a read-modify-write (CourierRequest.tenantMerge): GET, merge,
 * PUT, one at a time per tenant in this instance; a 404 on the GET means there is no tenant yet. A
 * 409 on the PUT (someone else changed the tenant meanwhile) is transient, so the record comes back
 * and the next attempt reads again.
 */
const sendStep = async (
  deps: DeliverDeps,
  request: CourierRequest,
  event: SegmentEvent,
  rawEvent: string,
  deadline: number,
  held: AbortSignal | undefined,
): Promise<Sent | Unsent> => {
  const { tenantMerge } = request
  if (tenantMerge !== undefined) {
    return oneTenantWriteAtATime(request.path, async () => {
      const read: CourierRequest = { method: 'GET', path: request.path }
      const paced = await pacedSend(deps, read, deadline, held)
      if ('unsent' in paced) return paced
      const current = paced.result
      if (current.status !== 404 && current.outcome.kind !== 'delivered') {
        return failure(read, current, paced.holdBackSeconds)
      }
      const body = mergeTenant(
        current.status === 404 ? undefined : current.body,
        tenantMerge.traits,
        tenantMerge.fallbackName,
      )
      return sendCall(deps, { method: 'PUT', path: request.path, body }, request, deadline, undefined)
    })
  }
  // The event itself goes out as the exact text Segment sent (see CourierRequest.rawBody).
  const call = request.body === event ? { ...request, rawBody: rawEvent } : request
  return sendCall(deps, call, request, deadline, held)
}

/** Sends `call` (what `request` routed to) and reads its answer. */
const sendCall = async (
  deps: DeliverDeps,
  call: CourierRequest,
  request: CourierRequest,
  deadline: number,
  held: AbortSignal | undefined,
): Promise<Sent | Unsent> => {
  const paced = await pacedSend(deps, call, deadline, held)
  if ('unsent' in paced) return paced
  const { result } = paced
  // Removing what is already gone is done.
  if (request.deletion === true && result.status === 404) return DELIVERED
  return result.outcome.kind === 'delivered' ? DELIVERED : failure(call, result, paced.holdBackSeconds)
}

/**
 * Sends every Courier request the event routes to, in order. The first one not delivered decides,
 * except for the steps of a deletion: each is attempted whatever the others answered, and the
 * record is done when all are (else the most retryable failure decides: a retry repeats only
 * idempotent deletes).
 */
const sendAll = async (
  deps: DeliverDeps,
  event: SegmentEvent,
  ids: Identities,
  rawEvent: string,
  deadline: number,
  held: AbortSignal,
) => {
  const route = routeEvent(event, { groupTenants: deps.config.courier.groupTenants }, ids)
  if ('skip' in route) return { skipped: route.skip }
  const failures: Sent[] = []
  for (const [index, request] of route.entries()) {
    // Only the event's first call gives way to a 429 elsewhere in the batch: once one call went
    // out the event is half delivered, and finishing it now is what keeps its calls in order.
    const sent = await sendStep(deps, request, event, rawEvent, deadline, index === 0 ? held : undefined)
    if ('unsent' in sent) return sent
    if (sent.outcome.kind === 'delivered') continue
    if (request.deletion !== true) return sent
    failures.push(sent)
  }
  if (failures.length === 0) return DELIVERED
  return failures.reduce((worst, next) =>
    SEVERITY[next.outcome.kind] < SEVERITY[worst.outcome.kind] ? next : worst,
  )
}

/**
 * An Engage audience event (or a user deletion), once its Courier part is delivered, is handed to the audience queue
 * for the list sync (lib/deliver/audience-sync.ts explains the design): the list write never sits
 * in this user's ordered path, which takes one SendMessage of a few milliseconds. Returns why
 * the hand-over failed, or undefined when it was done or not needed.
 */
const forwardAudienceChange = async (
  deps: DeliverDeps,
  event: SegmentEvent,
  rawEvent: string,
): Promise<string | undefined> => {
  const queueUrl = deps.config.queue.audienceUrl
  if (!deps.config.courier.audienceLists || queueUrl === undefined) return undefined
  // A deletion too: the list sync marks the person deleted, so an older audience change it has not
  // written yet can no longer put them back on a list (lib/deliver/audience-sync.ts).
  if (audienceChangeOf(event) === undefined && deletionOf(event) === undefined) return undefined
  try {
    await deps.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: rawEvent }))
    return undefined
  } catch (error) {
    return `handing the audience change to the audience queue failed: ${String(error)}`
  }
}

/** The record's string message attributes (a redriven dead letter carries its earlier reasons in them). */
const stringAttributes = (record: SQSRecord): Record<string, string> => {
  const attributes: Record<string, string> = {}
  for (const [name, value] of Object.entries(record.messageAttributes ?? {})) {
    if (typeof value.stringValue === 'string') attributes[name] = value.stringValue
  }
  return attributes
}

const deadLetter = async (deps: DeliverDeps, record: SQSRecord, result: RecordResult) => {
  const event = result.event ?? eventOf(record)
  const previous = stringAttributes(record)
  const message = deadLetterMessage(
    record.body,
    {
      stage: 'deliver',
      reason: textForLog(result.reason ?? 'unknown'),
      status: result.status,
      courierType: result.courierType,
      // A body that is not an event (a truncated dead letter) still has the ids ingest recorded.
      messageId: event?.messageId ?? previous.messageId,
      type: event?.type ?? previous.type,
      previous,
    },
    deps.config.queue.batchMaxBytes,
    // The user's group, so a redrive replays the user's events in order. Deduplicated on the SQS
    // message id: dead-lettering the same receive twice (a retried invocation) stores it once,
    // and the id differs from the events queue's, so a redrive within 5 minutes is not dropped.
    { group: groupOf(record), deduplicationId: fifoId('dead', record.messageId) },
  )
  const send = (dead: typeof message) =>
    deps.sqs.send(
      new SendMessageCommand({
        QueueUrl: deps.config.queue.dlqUrl,
        MessageBody: dead.body,
        MessageAttributes: toSqsAttributes(dead.attributes),
        ...fifoFields(dead, deps.config.queue.fifo),
      }),
    )
  try {
    await send(message)
  } catch (error) {
    // SQS refused the message for what it holds (a client fault: an attribute it will not take).
    // Sending it again unchanged would fail forever, so it goes once more with plain ASCII
    // attributes; any other failure (throttling, network) is left to the caller to retry.
    if (!isSenderFault(error)) throw error
    await send(plainDeadLetter(message, `${(error as Error).name}: ${(error as Error).message}`))
  }
}

/** An SQS error that is the request's fault (InvalidParameterValue …), not SQS's or the network's. */
const isSenderFault = (error: unknown): boolean =>
  typeof error === 'object' && error !== null && (error as { $fault?: string }).$fault === 'client'

const deliverRecord = async (
  deps: DeliverDeps,
  record: SQSRecord,
  deadline: number,
  held: AbortSignal = new AbortController().signal,
): Promise<RecordResult> => {
  const parsed = parseRecord(record)
  const event = 'event' in parsed ? parsed.event : undefined
  let decision: Decision
  let status: number | undefined
  let courierError: CourierError | undefined
  if ('error' in parsed) {
    decision = { action: 'dead-letter', reason: parsed.error, status: 0 }
  } else {
    const sent = await sendAll(deps, parsed.event, parsed.ids, record.body, deadline, held)
    if ('skipped' in sent) return { outcome: 'skipped', event, reason: sent.skipped }
    if ('unsent' in sent) {
      return sent.unsent === 'held'
        ? { outcome: 'held-back', event, status: 429, reason: HELD_BACK }
        : { outcome: 'retried', event, delaySeconds: UNSTARTED_DELAY_SECONDS, reason: NOT_STARTED }
    }
    status = sent.outcome.status
    courierError = sent.error
    decision = decide(
      sent.outcome,
      receiveCountOf(record),
      deps.config.retry,
      deps.random,
      sent.holdBackSeconds,
    )
    if (sent.outcome.kind === 'delivered') {
      addMetric(deps.metrics, 'DeliveryLatency', latencyMs(parsed.event) ?? 0)
    }
    if (sent.outcome.kind === 'auth') {
      deps.logger.error('Courier refused the auth token: check COURIER_AUTH_TOKEN; the event stays queued', {
        error: sent.error,
      })
    }
    if (decision.action === 'retry') {
      const reason = sent.error?.message
      return { outcome: decision.holdBatch ? 'rate-limited' : 'retried', event, ...decision, status, reason }
    }
  }
  if (decision.action === 'delete') {
    const forwarded = event === undefined ? undefined : await forwardAudienceChange(deps, event, record.body)
    if (forwarded !== undefined) {
      // The profile has the trait; the list change did not reach its queue. Retrying the record
      // repeats only the inbound call, which Courier dedupes on messageId.
      return {
        outcome: 'retried',
        event,
        delaySeconds: deps.config.retry.baseSeconds,
        status,
        reason: forwarded,
      }
    }
    return { outcome: 'delivered', event, status }
  }
  // Sent to the DLQ when the batch finishes (see sendDeadLetters), with the other dead letters.
  return {
    outcome: 'dead-lettered',
    event,
    status: decision.action === 'dead-letter' ? decision.status : status,
    reason: decision.action === 'dead-letter' ? decision.reason : undefined,
    courierType: courierError?.courierType,
  }
}

/**
 * A record's message group: its user. SQS gives it on a FIFO queue; on a standard queue it is
 * worked out the way ingest works it out, so the in-batch order rule is the same on both.
 */
const groupOf = (record: SQSRecord): string => {
  const given = (record.attributes as { MessageGroupId?: string }).MessageGroupId
  if (given) return given
  const parsed = parseRecord(record)
  if ('event' in parsed)
    return messageGroupId({ ...parsed.ids, messageId: parsed.event.messageId }, record.body)
  return `sqs:${record.messageId}`
}

/** The batch's records by group, each group in batch order (SQS's order within a FIFO group). */
const byGroup = (records: readonly SQSRecord[]): SQSRecord[][] => {
  const groups = new Map<string, SQSRecord[]>()
  for (const record of records) {
    const group = groupOf(record)
    const list = groups.get(group)
    if (list === undefined) groups.set(group, [record])
    else list.push(record)
  }
  return [...groups.values()]
}

/**
 * Delivers a batch: each user's records one after the other, in order, and different users in
 * parallel (DELIVERY_CONCURRENCY at most). A record that must be retried takes every later record
 * of its user back with it, with the same delay, while other users carry on: the FIFO rule for
 * partial batch responses ("the failed message and every later message of its group"), which
 * on a FIFO queue keeps the group blocked until the failed record comes back first.
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
 * https://docs.powertools.aws.dev/lambda/typescript/latest/features/batch/#fifo-queues (skipGroupOnError)
 * A 429 holds back everything not yet sent, whoever it belongs to.
 */
export const deliverBatch = async (
  deps: DeliverDeps,
  event: SQSEvent,
  context: Context,
): Promise<SQSBatchResponse> => {
  const records = event.Records
  const invokedAt = Date.now()
  const deadline = invokedAt + context.getRemainingTimeInMillis() - finishMarginMs(deps.sqsTimeouts)
  const results = new Map<SQSRecord, RecordResult>()
  const groups = byGroup(records)
  let holdBackSeconds: number | undefined
  const held = new AbortController()
  let next = 0

  const deliverGroup = async (group: readonly SQSRecord[]) => {
    for (const [index, record] of group.entries()) {
      if (holdBackSeconds !== undefined || Date.now() >= deadline) return
      let result: RecordResult
      try {
        result = await deliverRecord(deps, record, deadline, held.signal)
      } catch (error) {
        // Unknown errors are retried, never classified as permanent: a bug must not drop events.
        deps.logger.error('unexpected error delivering a record', {
          sqsMessageId: record.messageId,
          error: error as Error,
        })
        result = { outcome: 'retried', delaySeconds: deps.config.retry.baseSeconds, reason: String(error) }
      }
      results.set(record, result)
      if (result.holdBatch) {
        holdBackSeconds = Math.max(holdBackSeconds ?? 0, result.delaySeconds ?? 0)
        held.abort()
      }
      if (isRetry(result)) {
        for (const later of group.slice(index + 1)) {
          results.set(later, {
            outcome: 'waiting',
            delaySeconds: result.delaySeconds ?? 0,
            reason: `held back behind an earlier event of the same user (${result.outcome})`,
          })
        }
        return
      }
    }
  }
  const worker = async () => {
    while (holdBackSeconds === undefined && Date.now() < deadline) {
      const group = groups[next++]
      if (group === undefined) return
      await deliverGroup(group)
    }
  }
  const workers = Math.min(deps.config.delivery.concurrency, groups.length)
  await Promise.all(Array.from({ length: workers }, worker))

  for (const record of records) {
    // Calls given up while waiting their turn (and the user's later events behind them) wait as
    // long as the batch's 429 said, known only now.
    const result = results.get(record)
    if (result?.outcome === 'held-back' || result?.reason?.endsWith('(held-back)') === true) {
      results.set(record, { ...result, delaySeconds: holdBackSeconds ?? 1 })
    }
    if (results.has(record)) continue
    results.set(
      record,
      holdBackSeconds !== undefined
        ? {
            outcome: 'held-back',
            delaySeconds: holdBackSeconds,
            status: 429,
            reason: HELD_BACK,
          }
        : {
            outcome: 'retried',
            delaySeconds: UNSTARTED_DELAY_SECONDS,
            reason: NOT_STARTED,
          },
    )
  }
  return finish(deps, records, results, invokedAt)
}

const isRetry = (result: RecordResult) =>
  result.outcome === 'retried' ||
  result.outcome === 'rate-limited' ||
  result.outcome === 'held-back' ||
  result.outcome === 'waiting'

const METRIC_OF: Readonly<Record<RecordOutcome, Parameters<typeof addMetric>[1]>> = {
  delivered: 'Delivered',
  skipped: 'Skipped',
  'dead-lettered': 'DeadLettered',
  retried: 'Retried',
  'rate-limited': 'RateLimited',
  'held-back': 'RateLimited',
  waiting: 'Retried',
}

/**
 * A record about to be retried that is too old, or on its last allowed receive, is dead-lettered
 * instead (lib/deliver/expiry.ts); every dead letter is sent, and one SQS does not take stays on
 * the queue to be retried rather than lost.
 */
const sendDeadLetters = async (
  deps: DeliverDeps,
  records: readonly SQSRecord[],
  results: Map<SQSRecord, RecordResult>,
) => {
  const limits = giveUpLimits(deps.config.retry, deps.maxReceiveCount)
  const now = Date.now()
  const sends: Promise<void>[] = []
  for (const record of records) {
    let result = results.get(record) as RecordResult
    if (isRetry(result)) {
      const reason = giveUpReason(record, receiveCountOf(record), limits, result.reason, now)
      if (reason === undefined) continue
      result = { ...result, outcome: 'dead-lettered', reason, holdBatch: false }
      results.set(record, result)
    }
    if (result.outcome !== 'dead-lettered') continue
    const dead = result
    sends.push(
      deadLetter(deps, record, dead).catch((error: unknown) => {
        // The DLQ did not take it: keep the record on the queue rather than lose it.
        results.set(record, {
          ...dead,
          outcome: 'retried',
          delaySeconds: deps.config.retry.baseSeconds,
          reason: `dead-lettering failed: ${String(error)} (${dead.reason})`,
        })
      }),
    )
  }
  await Promise.all(sends)
}

const finish = async (
  deps: DeliverDeps,
  records: readonly SQSRecord[],
  results: Map<SQSRecord, RecordResult>,
  invokedAt: number,
): Promise<SQSBatchResponse> => {
  await sendDeadLetters(deps, records, results)
  const changes: VisibilityChange[] = []
  const counts: Partial<Record<RecordOutcome, number>> = {}
  for (const record of records) {
    const result = results.get(record) as RecordResult
    counts[result.outcome] = (counts[result.outcome] ?? 0) + 1
    const event = result.event ?? eventOf(record)
    const parsed = parseRecord(record)
    deps.logger.info('record', {
      messageId: event?.messageId,
      user: 'ids' in parsed ? personKey(parsed.ids) : undefined,
      type: event?.type,
      sqsMessageId: record.messageId,
      outcome: result.outcome,
      status: result.status,
      attempt: receiveCountOf(record),
      delaySeconds: result.delaySeconds,
      reason: result.reason === undefined ? undefined : textForLog(result.reason),
    })
    if (isRetry(result)) {
      changes.push({
        receiptHandle: record.receiptHandle,
        id: record.messageId,
        seconds: result.delaySeconds ?? 0,
      })
    }
  }
  for (const [outcome, count] of Object.entries(counts)) {
    const name = METRIC_OF[outcome as RecordOutcome]
    addMetric(deps.metrics, name, count)
  }
  for (const [endpointClass, pacer] of deps.pacers?.() ?? []) {
    addClassMetric(deps.metrics, 'CourierRate', endpointClass, pacer.ratePerSecond())
  }
  await changeVisibility(deps.sqs, deps.config.queue.url, changes, deps.logger, {
    receivedAtMs: earliestReceive(invokedAt),
  })
  return { batchItemFailures: changes.map((change) => ({ itemIdentifier: change.id })) }
}
