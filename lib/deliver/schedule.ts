import type { SQSRecord } from 'aws-lambda'
import pLimit from 'p-limit'
import { isRetry, type RecordResult } from './deliver-record.ts'

/**
 * The FIFO order of a batch: each user's records one after the other, in order, and different
 * users side by side (DELIVERY_CONCURRENCY at most). A record that comes back takes every later
 * record of its user back with it (`waiting`, with its delay) while other users carry on: the FIFO
 * rule for partial batch responses ("the failed message and every later message of its group"),
 * which on a FIFO queue keeps the group blocked until the failed record comes back first.
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
 * https://docs.powertools.aws.dev/lambda/typescript/latest/features/batch/#fifo-queues (skipGroupOnError)
 * A 429 stops the schedule: nothing not yet started is sent, whoever it belongs to.
 */

/** The batch's records by group, each group in batch order (SQS's order within a FIFO group). */
export const byGroup = (
  records: readonly SQSRecord[],
  groupOf: (record: SQSRecord) => string,
): SQSRecord[][] => {
  const groups = new Map<string, SQSRecord[]>()
  for (const record of records) {
    const group = groupOf(record)
    const list = groups.get(group)
    if (list === undefined) groups.set(group, [record])
    else list.push(record)
  }
  return [...groups.values()]
}

export interface Schedule {
  readonly concurrency: number
  /** Epoch ms: no record starts after it. */
  readonly deadline: number
  /** Whether the batch met a 429: no record starts after it. */
  readonly stopped: () => boolean
  /** One record's result; never rejects. */
  readonly deliver: (record: SQSRecord) => Promise<RecordResult>
}

/**
 * Runs the groups; resolves the result of every record that was attempted or waits behind one
 * (a record absent was not attempted: the deadline or a 429 came first).
 */
export const runGroups = async (
  groups: readonly (readonly SQSRecord[])[],
  schedule: Schedule,
): Promise<Map<SQSRecord, RecordResult>> => {
  const results = new Map<SQSRecord, RecordResult>()
  const mayStart = () => !schedule.stopped() && Date.now() < schedule.deadline
  const deliverGroup = async (group: readonly SQSRecord[]) => {
    for (const [index, record] of group.entries()) {
      if (!mayStart()) return
      const result = await schedule.deliver(record)
      results.set(record, result)
      if (isRetry(result)) {
        for (const later of group.slice(index + 1)) results.set(later, { outcome: 'waiting', behind: result })
        return
      }
    }
  }
  await pLimit(Math.max(1, schedule.concurrency)).map(groups, deliverGroup)
  return results
}
