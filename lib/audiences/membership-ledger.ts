import { createHash, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  type AttributeDefinition,
  BatchGetItemCommand,
  DeleteItemCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
  type KeySchemaElement,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb'
import pLimit from 'p-limit'
import type { ChangeOrder } from '../courier/audience.ts'

/**
 * The list sync's durable memory: for each member of each Courier list, the time of the latest
 * Segment event whose change it applied, and a short lease per list so that only one instance
 * writes a list's memberships at a time. It makes "the later Segment event wins" hold across the
 * list sync's instances and its cold starts, not only inside one warm instance.
 *
 * Why a lease as well as the times. Comparing times alone still races: instance A reads "never
 * applied", instance B applies a later exit and records it, then A's older enter reaches Courier
 * last. Holding the list's lease from the read of the times to their recording after Courier
 * answered makes read → write → record one step per list. The lease is a conditional write
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html);
 * it names its holder and lasts until the holder's invocation ends (Lambda stops it there, with
 * its Courier calls bounded by the same deadline), so an instance that dies holding it blocks the
 * list for at most that long. The holder deletes it as soon as its write is recorded.
 *
 * The table (serverless.yml `MembershipTable`, on-demand): partition key `list` (the list id),
 * sort key `member` (`m#` + the member id; the lease is the item `lease`, which no member key can
 * be). Keys are limited to 2,048 (partition) and 1,024 (sort) bytes
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html); an id too
 * long for its key is stored as `sha256:` and its hash. Items expire through DynamoDB's TTL on
 * `expiresAt` (epoch seconds, https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html):
 * a member's time is kept MEMORY_DAYS, longer than an event can live in the queue and then the DLQ
 * (14 days each at most) before it is replayed.
 *
 * Reads are strongly consistent (BatchGetItem `ConsistentRead`, at most 100 keys a call;
 * `UnprocessedKeys` asked again). A time is recorded by a conditional UpdateItem per member that
 * only ever moves it forward (`at`, then `messageId` on a tie), so even a holder whose lease
 * lapsed mid-write, or a retry that comes late, can never put an older time over a newer one.
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html
 */

/** The table's keys, as serverless.yml declares them and `npm start` creates them. */
export const MEMBERSHIP_TABLE_KEYS: {
  readonly KeySchema: KeySchemaElement[]
  readonly AttributeDefinitions: AttributeDefinition[]
} = {
  KeySchema: [
    { AttributeName: 'list', KeyType: 'HASH' },
    { AttributeName: 'member', KeyType: 'RANGE' },
  ],
  AttributeDefinitions: [
    { AttributeName: 'list', AttributeType: 'S' },
    { AttributeName: 'member', AttributeType: 'S' },
  ],
}

/**
 * The pseudo-list whose members are deleted people, at the time of their deletion: a list id is
 * `{computation_key}-{computation_id}` and always holds a '-', so this one is never a real list.
 */
export const DELETED_PEOPLE = 'deleted'

/** The TTL attribute (epoch seconds). */
export const MEMBERSHIP_TTL_ATTRIBUTE = 'expiresAt'

/** How long a member's latest applied time is remembered, days. */
export const MEMORY_DAYS = 35

const PARTITION_KEY_MAX_BYTES = 2_048
const SORT_KEY_MAX_BYTES = 1_024
const BATCH_GET_MAX_KEYS = 100
const LEASE_KEY = 'lease'

/** A change the list sync applied: one member of one list, at the Segment event's time. */
export interface AppliedMembership {
  readonly member: string
  /** The Segment event's time, epoch ms. */
  readonly at: number
  readonly subscribed: boolean
  readonly messageId: string
}

export interface ListLease {
  /** Until when another instance waits for it, epoch ms; then `withList` gives up (`acquired: false`). */
  readonly waitUntil: number
  /** When the lease lapses if it is never released: the end of the holder's invocation, epoch ms. */
  readonly holdUntil: number
}

export interface MembershipLedger {
  /**
   * Runs `work` holding the list's lease, released afterwards (also when `work` throws). Waits for
   * another holder until `lease.waitUntil`, then resolves `{ acquired: false }` without running it.
   * Rejects with DynamoDB's error when the table cannot be reached.
   */
  readonly withList: <T>(
    listId: string,
    lease: ListLease,
    work: () => Promise<T>,
  ) => Promise<{ readonly acquired: true; readonly value: T } | { readonly acquired: false }>
  /**
   * The latest applied change per member (its time, epoch ms, and messageId); members never
   * applied are absent. Consistent reads. Rejects with DynamoDB's error.
   */
  readonly lastApplied: (listId: string, members: readonly string[]) => Promise<Map<string, ChangeOrder>>
  /**
   * Records changes Courier took, each only over an older one (a newer one recorded meanwhile
   * stays). Starts no call after `deadline` (epoch ms): rejects when some change is left
   * unrecorded then, or with DynamoDB's error; the caller retries those records (repeating the
   * Courier write is harmless).
   */
  readonly recordApplied: (
    listId: string,
    changes: readonly AppliedMembership[],
    deadline: number,
  ) => Promise<void>
}

const keyText = (value: string, maxBytes: number): string =>
  Buffer.byteLength(value, 'utf8') <= maxBytes
    ? value
    : `sha256:${createHash('sha256').update(value, 'utf8').digest('hex')}`

const listKey = (listId: string) => ({ S: keyText(listId, PARTITION_KEY_MAX_BYTES) })

/** Pure: the item key of a member of a list. */
export const memberKey = (listId: string, member: string) => ({
  list: listKey(listId),
  member: { S: keyText(`m#${member}`, SORT_KEY_MAX_BYTES) },
})

const leaseKey = (listId: string) => ({ list: listKey(listId), member: { S: LEASE_KEY } })

const chunks = <T>(items: readonly T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size))

const isConditionFailed = (error: unknown): boolean =>
  (error as { name?: string } | undefined)?.name === 'ConditionalCheckFailedException'

/** Waits between lease attempts: short, since a holder keeps it for one Courier call. */
const LEASE_POLL_MS = { first: 100, max: 1_000 }
/** BatchGetItem's unprocessed keys are asked again, after 100 then 200 ms, at most this many times. */
const UNPROCESSED_ATTEMPTS = 3
/** Conditional updates in flight at once while recording. */
const RECORD_CONCURRENCY = 25

/**
 * How long one DynamoDB call may take: bounded as the SQS calls are (the same SDK options and
 * retry), so the list sync's deadline margin covers them (listSyncMarginMs). DynamoDB answers in
 * milliseconds; a call that has not in a second is retried once.
 * https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
 */
export interface DynamoDbTimeouts {
  /** Attempts per call, the first included (the SDK's maxAttempts). */
  readonly maxAttempts: number
  readonly connectionTimeoutMs: number
  readonly requestTimeoutMs: number
}

export const LEDGER_TIMEOUTS: DynamoDbTimeouts = {
  maxAttempts: 2,
  connectionTimeoutMs: 1_000,
  requestTimeoutMs: 1_000,
}

/**
 * One DynamoDB client per function, made at cold start. Locally and in tests
 * `AWS_ENDPOINT_URL_DYNAMODB` points it at the embedded DynamoDB; the SDK reads it itself.
 * https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html
 */
export const createDynamoDbClient = (
  overrides: DynamoDBClientConfig = {},
  timeouts: DynamoDbTimeouts = LEDGER_TIMEOUTS,
): DynamoDBClient =>
  new DynamoDBClient({
    maxAttempts: timeouts.maxAttempts,
    requestHandler: {
      connectionTimeout: timeouts.connectionTimeoutMs,
      requestTimeout: timeouts.requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
    ...overrides,
  })

export const createMembershipLedger = (
  client: DynamoDBClient,
  tableName: string,
  now: () => number = Date.now,
): MembershipLedger => {
  const acquire = async (listId: string, holder: string, lease: ListLease): Promise<boolean> => {
    let wait = LEASE_POLL_MS.first
    for (;;) {
      const at = now()
      try {
        await client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: leaseKey(listId),
            UpdateExpression: 'SET holder = :holder, #until = :until, #ttl = :ttl',
            // Free, lapsed, or (a retry of this very call) ours.
            ConditionExpression: 'attribute_not_exists(#until) OR #until < :now OR holder = :holder',
            ExpressionAttributeNames: { '#until': 'until', '#ttl': MEMBERSHIP_TTL_ATTRIBUTE },
            ExpressionAttributeValues: {
              ':holder': { S: holder },
              ':until': { N: String(lease.holdUntil) },
              ':now': { N: String(at) },
              ':ttl': { N: String(Math.ceil(lease.holdUntil / 1_000) + 86_400) },
            },
          }),
        )
        return true
      } catch (error) {
        if (!isConditionFailed(error)) throw error
      }
      if (now() + wait > lease.waitUntil) return false
      await sleep(wait)
      wait = Math.min(LEASE_POLL_MS.max, wait * 2)
    }
  }

  const release = async (listId: string, holder: string) => {
    try {
      await client.send(
        new DeleteItemCommand({
          TableName: tableName,
          Key: leaseKey(listId),
          ConditionExpression: 'holder = :holder',
          ExpressionAttributeValues: { ':holder': { S: holder } },
        }),
      )
    } catch {
      // A condition failure: it lapsed and another took it, not ours to delete. Anything else: it
      // lapses by itself at holdUntil.
    }
  }

  return {
    withList: async (listId, lease, work) => {
      const holder = randomUUID()
      if (!(await acquire(listId, holder, lease))) return { acquired: false }
      try {
        return { acquired: true, value: await work() }
      } finally {
        await release(listId, holder)
      }
    },

    lastApplied: async (listId, members) => {
      const applied = new Map<string, ChangeOrder>()
      const byKey = new Map<string, string>()
      for (const member of members) byKey.set(memberKey(listId, member).member.S, member)
      const list = listKey(listId)
      await Promise.all(
        chunks([...byKey.keys()], BATCH_GET_MAX_KEYS).map(async (keys) => {
          let pending: Record<string, { S: string }>[] = keys.map((member) => ({
            list,
            member: { S: member },
          }))
          for (let attempt = 0; pending.length > 0; attempt++) {
            if (attempt >= UNPROCESSED_ATTEMPTS)
              throw new Error('DynamoDB left keys unprocessed (BatchGetItem)')
            if (attempt > 0) await sleep(50 * 2 ** attempt)
            const result = await client.send(
              new BatchGetItemCommand({
                RequestItems: {
                  [tableName]: {
                    Keys: pending,
                    ConsistentRead: true,
                    // `member` is one of DynamoDB's reserved words.
                    ProjectionExpression: '#member, #at, messageId',
                    ExpressionAttributeNames: { '#member': 'member', '#at': 'at' },
                  },
                },
              }),
            )
            for (const item of result.Responses?.[tableName] ?? []) {
              const member = byKey.get(item.member?.S ?? '')
              const at = Number(item.at?.N)
              if (member !== undefined && Number.isFinite(at)) {
                applied.set(member, { at, messageId: item.messageId?.S ?? '' })
              }
            }
            pending = (result.UnprocessedKeys?.[tableName]?.Keys ?? []) as typeof pending
          }
        }),
      )
      return applied
    },

    recordApplied: async (listId, changes, deadline) => {
      const expiresAt = String(Math.ceil(now() / 1_000) + MEMORY_DAYS * 86_400)
      let unrecorded = 0
      const record = async (change: AppliedMembership) => {
        try {
          await client.send(
            new UpdateItemCommand({
              TableName: tableName,
              Key: memberKey(listId, change.member),
              UpdateExpression:
                'SET #at = :at, messageId = :messageId, subscribed = :subscribed, #ttl = :ttl',
              // Only forward: never an older change over a newer one (the order of isLater).
              ConditionExpression:
                'attribute_not_exists(#at) OR #at < :at OR (#at = :at AND messageId <= :messageId)',
              ExpressionAttributeNames: { '#at': 'at', '#ttl': MEMBERSHIP_TTL_ATTRIBUTE },
              ExpressionAttributeValues: {
                ':at': { N: String(change.at) },
                ':messageId': { S: change.messageId },
                ':subscribed': { BOOL: change.subscribed },
                ':ttl': { N: expiresAt },
              },
            }),
          )
        } catch (error) {
          // A newer change is recorded already: it stands.
          if (!isConditionFailed(error)) throw error
        }
      }
      await pLimit(RECORD_CONCURRENCY).map(changes, async (change) => {
        if (now() >= deadline) {
          unrecorded += 1
          return
        }
        await record(change)
      })
      if (unrecorded > 0) throw new Error(`${unrecorded} applied changes not recorded before the deadline`)
    },
  }
}
