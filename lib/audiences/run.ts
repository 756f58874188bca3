import type { Logger } from '@aws-lambda-powertools/logger'
import type { Metrics } from '@aws-lambda-powertools/metrics'
import type { SQSClient } from '@aws-sdk/client-sqs'
import type { SQSRecord } from 'aws-lambda'
import { type Random, retryDelaySeconds } from '../backoff.ts'
import type { Config } from '../config.ts'
import type { CourierClient, SendResult } from '../courier/client.ts'
import { readCourierErrorBody } from '../courier/outcome.ts'
import { outcomeOfCall } from '../courier/paced-call.ts'
import type { Pacer, PacerFor } from '../courier/pacer.ts'
import { decide } from '../courier/retry-policy.ts'
import type { CourierRequest } from '../courier/routing.ts'
import { receiveCountOf } from '../queue/expiry.ts'
import { type Fate, NOT_STARTED, UNSTARTED_DELAY_SECONDS } from '../queue/settle-batch.ts'
import type { SqsTimeouts } from '../queue/sqs-client.ts'
import { idsForLog } from '../telemetry.ts'
import { pathForLog, textForLog, userKey } from '../user-key.ts'
import type { DynamoDbTimeouts, MembershipLedger } from './membership-ledger.ts'
import { type BatchPlan, type Carrier, exceptionFate } from './records.ts'

/**
 * One invocation of the list sync, in one object: its deadlines, each record's fate as the writes
 * settle it, and whether Courier rate-limited list writes (which holds back the writes not yet
 * made). The writes (list-writes.ts) settle the records they carry through these functions.
 */

export interface AudienceSyncDeps {
  readonly config: Config
  readonly sqs: SQSClient
  readonly courier: CourierClient
  readonly logger: Logger
  readonly metrics?: Metrics | undefined
  readonly pacerFor: PacerFor
  /** The pacers in use, for the CourierRate metric. */
  readonly pacers?: (() => readonly (readonly [string, Pacer])[]) | undefined
  readonly ledger: MembershipLedger
  readonly sqsTimeouts?: SqsTimeouts | undefined
  readonly ledgerTimeouts?: DynamoDbTimeouts | undefined
  /** The queue's maxReceiveCount (default QUEUE_SETTINGS.maxReceiveCount). */
  readonly maxReceiveCount?: number | undefined
  readonly random?: Random | undefined
}

export interface Run {
  readonly deps: AudienceSyncDeps
  /** Epoch ms: no Courier write starts after it. */
  readonly deadline: number
  /** Epoch ms: the invocation's end, when a list lease lapses if never released. */
  readonly invocationEnd: number
  /** Epoch ms: recording starts no ledger call after it (the last one and the release still fit). */
  readonly recordBy: number
  readonly fates: Map<SQSRecord, Fate>
  /** Whom each record is for (records.ts): a list write's log line names them by key. */
  readonly people: BatchPlan['people']
  /** Set once Courier answered a list write 429: how long the unwritten records wait. */
  holdBackSeconds: number | undefined
}

export const settle = (run: Run, group: readonly Carrier[], fate: Fate): void => {
  for (const carrier of group) {
    for (const record of carrier.records) run.fates.set(record, fate)
  }
}

/** The most receives among a group's records: the backoff step of their shared retry. */
const receivesOf = (group: readonly Carrier[]): number =>
  Math.max(...group.flatMap((carrier) => carrier.records.map(receiveCountOf)))

export const retryAll = (run: Run, group: readonly Carrier[], delaySeconds: number, reason: string): void =>
  settle(run, group, { action: 'retry', delaySeconds, reason })

export const notStarted = (run: Run, group: readonly Carrier[]): void =>
  retryAll(run, group, UNSTARTED_DELAY_SECONDS, NOT_STARTED)

/** The membership ledger could not be read or written: the records are retried with backoff, never dropped. */
export const ledgerFailed = (run: Run, group: readonly Carrier[], error: unknown, listId: string): void => {
  run.deps.logger.warn('membership ledger failed; the records are retried', { listId, error: error as Error })
  const { baseSeconds, maxSeconds } = run.deps.config.retry
  retryAll(
    run,
    group,
    retryDelaySeconds(receivesOf(group), baseSeconds, maxSeconds, run.deps.random),
    `membership ledger: ${error instanceof Error ? error.message : String(error)}`,
  )
}

/** Handling the group threw: its records' failure alone, dead-lettered once it keeps throwing. */
export const threw = (run: Run, group: readonly Carrier[], error: unknown): void => {
  run.deps.logger.error('unexpected error in the list sync', { error: error as Error })
  settle(run, group, exceptionFate(error, run.deps.config.retry.baseSeconds))
}

/** Whether the batch was rate-limited; if so the group waits as long as the 429 said. */
export const heldBack = (run: Run, group: readonly Carrier[]): boolean => {
  if (run.holdBackSeconds === undefined) return false
  retryAll(run, group, run.holdBackSeconds, 'held back: Courier rate-limited list writes')
  return true
}

/** Courier's answer to one list write → the fate of the records it carried; whether it was done. */
export const settleWrite = (
  run: Run,
  group: readonly Carrier[],
  request: CourierRequest,
  result: SendResult,
  pacer: Pacer | undefined,
): boolean => {
  const { deps } = run
  const outcome = outcomeOfCall(request, result)
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
    carrier.records.flatMap((record) => {
      const person = run.people.get(record)
      return person === undefined ? [] : [{ messageId: person.messageId, user: userKey(person.recipientId) }]
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
  switch (decision.action) {
    case 'delete':
      settle(run, group, { action: 'delete' })
      return true
    case 'retry':
      if (decision.holdBatch) run.holdBackSeconds = decision.delaySeconds
      settle(run, group, {
        action: 'retry',
        delaySeconds: decision.delaySeconds,
        reason,
        status: result.status,
        courierType,
      })
      return false
    case 'dead-letter':
      settle(run, group, {
        action: 'dead-letter',
        reason: reason ?? decision.reason,
        status: decision.status,
        courierType,
      })
      return false
  }
}
