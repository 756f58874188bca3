import type { Logger } from '@aws-lambda-powertools/logger'
import { type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb'
import type { MiddlewareObj } from '@middy/core'
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda'
import { ENDPOINT_CLASSES, type EndpointClass } from '../courier/endpoint-class.ts'
import { consistentBatchGet } from '../dynamodb-batch-get.ts'

/**
 * The rate limit the deliver fleet learnt from Courier, shared between its instances. Lambda
 * retires instances and starts cold ones all the time (after a quiet spell, at every scale-out);
 * a cold instance on a class without a published limit sends unpaced until Courier pushes back
 * (rate-control.ts), which into a limit the other instances already fill costs a burst of 429s
 * each time: measured in the fleet simulation, one instance replaced every 3 s under a limit of
 * 20 requests/s drew over 20% 429s. With the learnt rate shared, a replacement starts paced just
 * under it and the share stays under 5%.
 *
 * Stored in the stack's DynamoDB table (the list sync's membership table, on demand): partition
 * `list` = LEARNT_RATES_KEY (no '-', so never a list id, which is `{computation_key}-{computation_id}`),
 * sort key `member` = the endpoint class; attributes `rps` (requests/s per instance: the learnt
 * limit, wMax), `at` (epoch ms) and `expiresAt` (DynamoDB TTL, epoch seconds: a rate nobody
 * confirmed for LEARNT_RATE_TTL_SECONDS is not trusted; the filter on read does not wait for TTL's
 * lazy deletion). https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html
 *
 * Read once per instance, when it is made: in the function's init, which Lambda runs before the
 * first invocation (before any traffic, with provisioned concurrency), one strongly consistent
 * BatchGetItem on the client the deletion marks use, which it leaves connected for them.
 * https://docs.aws.amazon.com/lambda/latest/operatorguide/execution-environments.html
 * Written by an instance when its learnt limit moves by more than a tenth from what it last read
 * or wrote (pacer.ts LEARNT_CHANGE), never per request; and forgotten (its `rps` removed) when the
 * limit an instance was told or seeded went stale: no 429 for the controller's max-probing time
 * while sending (rate-control.ts learntLimitStale), so a limit Courier raised, or a storm that
 * ended, does not keep seeding cold instances low for the rest of the hour. Cost at DynamoDB on-demand prices ($0.125 per million reads,
 * $0.625 per million writes, us-east-1): a read per cold start and a write per real change of the
 * limit, well under a cent a month for a fleet of a few instances; the read adds one DynamoDB
 * round trip (single-digit milliseconds in the region) to an instance's init only.
 * A read or write that fails is logged and skipped: the instance then starts open, as without it.
 * https://aws.amazon.com/dynamodb/pricing/on-demand/
 */

/** The partition of the learnt rates in the membership table. */
export const LEARNT_RATES_KEY = 'learnt#rates'

/** How long a learnt rate is trusted without being written again, seconds. */
export const LEARNT_RATE_TTL_SECONDS = 3_600

export interface LearntRates {
  /** The fleet's learnt rate of each class, requests/s per instance; classes without one are absent. */
  readonly read: () => Promise<ReadonlyMap<EndpointClass, number>>
  /** Shares this instance's learnt rate of a class; undefined forgets the shared one (it went stale). */
  readonly write: (endpointClass: EndpointClass, ratePerSecond: number | undefined) => Promise<void>
}

export const createLearntRates = (
  client: DynamoDBClient,
  tableName: string,
  now: () => number = Date.now,
): LearntRates => ({
  read: async () => {
    const items = await consistentBatchGet(
      client,
      tableName,
      ENDPOINT_CLASSES.map((endpointClass) => ({
        list: { S: LEARNT_RATES_KEY },
        member: { S: endpointClass },
      })),
      { expression: '#member, rps, #at', names: { '#member': 'member', '#at': 'at' } },
    )
    const rates = new Map<EndpointClass, number>()
    const fresh = now() - LEARNT_RATE_TTL_SECONDS * 1_000
    for (const item of items) {
      const endpointClass = item.member?.S as EndpointClass
      const rps = Number(item.rps?.N)
      const at = Number(item.at?.N)
      // Only what this module wrote counts: a class it knows, a positive rate, recent enough.
      if (ENDPOINT_CLASSES.includes(endpointClass) && rps > 0 && Number.isFinite(rps) && at >= fresh) {
        rates.set(endpointClass, rps)
      }
    }
    return rates
  },
  write: async (endpointClass, ratePerSecond) => {
    const at = now()
    const times = {
      ':at': { N: String(at) },
      ':expires': { N: String(Math.ceil(at / 1_000) + LEARNT_RATE_TTL_SECONDS) },
    }
    // Forgetting is an UpdateItem too (REMOVE rps): the one write action deliver's role holds.
    await client.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: { list: { S: LEARNT_RATES_KEY }, member: { S: endpointClass } },
        ExpressionAttributeNames: { '#at': 'at' },
        ...(ratePerSecond === undefined
          ? {
              UpdateExpression: 'REMOVE rps SET #at = :at, expiresAt = :expires',
              ExpressionAttributeValues: times,
            }
          : {
              UpdateExpression: 'SET rps = :rps, #at = :at, expiresAt = :expires',
              ExpressionAttributeValues: { ...times, ':rps': { N: String(ratePerSecond) } },
            }),
      }),
    )
  },
})

/** Kept back from the invocation's end when waiting for learnt-rate writes. */
const FLUSH_MARGIN_MS = 250

/**
 * The fleet's learnt rates for one instance: read as it is made, and waited for (on a client whose
 * calls are bounded, LEDGER_TIMEOUTS: 2 attempts of 1 s at most) before its first batch, so a cold
 * instance starts paced near them instead of open (`fleetRate` for its pacers); what it learns
 * (`onLearnt`) written back before each invocation ends (Lambda may freeze the instance once it
 * has answered), never past that end. A failed read or write is logged and skipped: the instance
 * then behaves as if nothing were shared. `learnt` null: nothing is shared.
 */
export const shareLearntRates = (learnt: LearntRates | null, logger: Logger) => {
  let rates: ReadonlyMap<EndpointClass, number> | undefined
  // Started now (init), caught now: a failure is never an unhandled rejection.
  const reading =
    learnt === null
      ? undefined
      : learnt.read().catch((error: unknown) => {
          logger.warn('reading the fleet’s learnt Courier rate failed: starting unpaced', {
            error: error as Error,
          })
          return new Map<EndpointClass, number>()
        })
  const writes: Promise<void>[] = []
  // A write still pending at the invocation's end is left to finish (or fail, logged) on its own,
  // and the next change writes again; a timed-out invocation would bring its batch back.
  const flush = async (request: { context: Context }) => {
    const pending = Promise.all(writes.splice(0))
    let timer: NodeJS.Timeout | undefined
    const end = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, request.context.getRemainingTimeInMillis() - FLUSH_MARGIN_MS))
    })
    await Promise.race([pending, end])
    clearTimeout(timer)
  }
  return {
    /** Settles once the read has ended (read, or failed and logged); never rejects. */
    ready: reading === undefined ? Promise.resolve() : reading.then(() => undefined),
    fleetRate: (endpointClass: EndpointClass): number | undefined => rates?.get(endpointClass),
    onLearnt:
      learnt === null
        ? undefined
        : ({
            endpointClass,
            ratePerSecond,
          }: {
            endpointClass: EndpointClass
            ratePerSecond: number | undefined
          }) => {
            writes.push(
              learnt.write(endpointClass, ratePerSecond).catch((error: unknown) => {
                logger.warn('sharing the learnt Courier rate failed', {
                  endpointClass,
                  error: error as Error,
                })
              }),
            )
          },
    middleware: {
      before: async () => {
        if (rates === undefined && reading !== undefined) rates = await reading
      },
      after: flush,
      onError: flush,
    } satisfies MiddlewareObj<SQSEvent, SQSBatchResponse>,
  }
}
