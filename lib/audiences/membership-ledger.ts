import { createHash, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  type AttributeDefinition,
  DeleteItemCommand,
  type DynamoDBClient,
  type KeySchemaElement,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb'
import pLimit from 'p-limit'
import type { ChangeOrder } from '../courier/audience.ts'
import { consistentBatchGet } from '../dynamodb-batch-get.ts'

/**
 * The list sync's durable memory, so that "the later Segment event wins" holds across its
 * instances and cold starts: per member of each Courier list, the time of the latest change
 * applied, and a short lease per list so that reading those times, writing Courier and recording
 * the new times is one step per list (times alone still race: A reads "never applied", B applies
 * a later exit, A's older enter reaches Courier last). README "The audience list sync" tells the
 * whole story.
 */
/**
 * The table's keys, as serverless.yml declares them and `npm start` creates them: partition key
 * `list` (the list id), sort key `member` (`m#` + the member id; the lease is the item `lease`,
 * which no member key can be). An id too long for its key (2,048 and 1,024 bytes,
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html) is stored as
 * `sha256:` and its hash.
 */
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
 * The pseudo-list whose members are deleted people, at the time of their deletion (the deletion
 * marks, lib/deletion-marks.ts, which deliver writes and both functions read): a list id is
 * `{computation_key}-{computation_id}` and always holds a '-', so this one is never a real list.
 */
export { DELETED_PEOPLE } from '../deletion-marks.ts'

/** The TTL attribute (epoch seconds). */
export const MEMBERSHIP_TTL_ATTRIBUTE = 'expiresAt'

/**
 * How long a member's latest applied time is remembered, days, through DynamoDB's TTL on
 * `expiresAt` (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html): longer
 * than an event can live in the queue and then the DLQ (14 days each at most) before it is replayed.
 */
export const MEMORY_DAYS = 35

const PARTITION_KEY_MAX_BYTES = 2_048
const SORT_KEY_MAX_BYTES = 1_024
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

const isConditionFailed = (error: unknown): boolean =>
  (error as { name?: string } | undefined)?.name === 'ConditionalCheckFailedException'

/** Waits between lease attempts: short, since a holder keeps it for one Courier call. */
const LEASE_POLL_MS = { first: 100, max: 1_000 }
/** Conditional updates in flight at once while recording. */
const RECORD_CONCURRENCY = 25

// The client and its bounds are shared with deliver's deletion marks (lib/dynamodb-client.ts).
export { createDynamoDbClient, type DynamoDbTimeouts, LEDGER_TIMEOUTS } from '../dynamodb-client.ts'

export const createMembershipLedger = (
  client: DynamoDBClient,
  tableName: string,
  now: () => number = Date.now,
): MembershipLedger => {
  /**
   * The lease is a conditional write naming its holder
   * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html),
   * lasting until the holder's invocation ends (Lambda stops its Courier calls there too), so a
   * holder that dies blocks the list for at most that long.
   */
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
      const items = await consistentBatchGet(
        client,
        tableName,
        [...byKey.keys()].map((member) => ({ list, member: { S: member } })),
        // `member` is one of DynamoDB's reserved words.
        { expression: '#member, #at, messageId', names: { '#member': 'member', '#at': 'at' } },
      )
      for (const item of items) {
        const member = byKey.get(item.member?.S ?? '')
        const at = Number(item.at?.N)
        if (member !== undefined && Number.isFinite(at)) {
          applied.set(member, { at, messageId: item.messageId?.S ?? '' })
        }
      }
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
              // Only forward: never an older change over a newer one (the order of isLater), even
              // from a holder whose lease lapsed mid-write or a retry that comes late.
              // https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html
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
