import { createHash } from 'node:crypto'
import { type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb'
import { consistentBatchGet } from './dynamodb-batch-get.ts'

/**
 * The deletion marks: for each person Segment deleted, when (Segment's clock, epoch ms), by which
 * notification (its messageId) and whether the relay finished removing them from Courier. Deliver
 * writes a mark before its Courier calls and reads the marks of every person in a batch once,
 * so that nothing Segment received before a deletion reaches Courier after it (a late retry, a
 * redrive, an overtaken event on a standard queue; lib/segment/erasure.ts decides) and a deletion
 * replayed later is carried out once. The audience list sync reads the same marks.
 *
 * They live in the membership table (serverless.yml `MembershipTable`), kept whether or not
 * audience lists are on: the item `{list: "deleted", member: "m#" + userId}`, holding
 * `at`, `messageId`, `doneBy` (the messageId of the deletion whose Courier removals all
 * succeeded) and the TTL `expiresAt`, never traits. "deleted" holds no '-', so no
 * Courier list id (`{computation_key}-{computation_id}`) is ever this partition. A userId too long
 * for DynamoDB's 1,024-byte sort key is stored as `sha256:` and its hash
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html).
 *
 * Reads: BatchGetItem, strongly consistent (a mark written a moment ago by another instance is
 * seen), 100 keys a call, unprocessed keys asked again
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html).
 * Writes: conditional UpdateItem that only moves a mark forward in time (`at`, then `messageId`
 * in DynamoDB's UTF-8 byte order on a tie)
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html).
 * Marks expire DELETION_MEMORY_DAYS after they were written (DynamoDB TTL,
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html).
 */

/** The partition of the deletion marks in the membership table. */
export const DELETED_PEOPLE = 'deleted'

/** How long a deletion is remembered, days: longer than an event can wait in the queue and then the DLQ (14 days each). */
export const DELETION_MEMORY_DAYS = 35

const SORT_KEY_MAX_BYTES = 1_024

/** A person's mark: when, by which notification, and whether every Courier removal succeeded. */
export interface DeletionMark {
  /** The deletion's time, epoch ms (Segment's clock). */
  readonly at: number
  readonly messageId: string
  readonly done: boolean
}

export interface DeletionMarks {
  /** The marks of these people (userIds); those never deleted are absent. Rejects with DynamoDB's error. */
  readonly read: (people: readonly string[]) => Promise<Map<string, DeletionMark>>
  /**
   * Marks the person deleted at `deletion.at` (not yet done), unless a later deletion is marked
   * already (then resolves `false`). Rejects with DynamoDB's error.
   */
  readonly mark: (person: string, deletion: Pick<DeletionMark, 'at' | 'messageId'>) => Promise<boolean>
  /** Records that this deletion's Courier removals all succeeded (a later mark is left as it is). */
  readonly finish: (person: string, deletion: Pick<DeletionMark, 'at' | 'messageId'>) => Promise<void>
}

/** Pure: the sort key of a person's mark (`m#` + userId, or its hash when too long). */
export const markMemberKey = (person: string): string => {
  const key = `m#${person}`
  return Buffer.byteLength(key, 'utf8') <= SORT_KEY_MAX_BYTES
    ? key
    : `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`
}

const markKey = (person: string) => ({ list: { S: DELETED_PEOPLE }, member: { S: markMemberKey(person) } })

const isConditionFailed = (error: unknown): boolean =>
  (error as { name?: string } | undefined)?.name === 'ConditionalCheckFailedException'

export const createDeletionMarks = (
  client: DynamoDBClient,
  tableName: string,
  now: () => number = Date.now,
): DeletionMarks => ({
  read: async (people) => {
    const marks = new Map<string, DeletionMark>()
    const byKey = new Map<string, string>()
    for (const person of people) byKey.set(markMemberKey(person), person)
    const items = await consistentBatchGet(
      client,
      tableName,
      [...byKey.keys()].map((member) => ({ list: { S: DELETED_PEOPLE }, member: { S: member } })),
      // `member` and `at` are among DynamoDB's reserved words.
      { expression: '#member, #at, messageId, doneBy', names: { '#member': 'member', '#at': 'at' } },
    )
    for (const item of items) {
      const person = byKey.get(item.member?.S ?? '')
      const at = Number(item.at?.N)
      if (person !== undefined && Number.isFinite(at)) {
        const messageId = item.messageId?.S ?? ''
        marks.set(person, { at, messageId, done: item.doneBy?.S === messageId })
      }
    }
    return marks
  },

  mark: async (person, { at, messageId }) => {
    try {
      await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: markKey(person),
          // `subscribed` false: the list sync reads a mark as a member's latest change.
          UpdateExpression: 'SET #at = :at, messageId = :messageId, subscribed = :false, #ttl = :ttl',
          // Only forward (the same deletion again rewrites the same values).
          ConditionExpression:
            'attribute_not_exists(#at) OR #at < :at OR (#at = :at AND messageId <= :messageId)',
          ExpressionAttributeNames: { '#at': 'at', '#ttl': 'expiresAt' },
          ExpressionAttributeValues: {
            ':at': { N: String(at) },
            ':messageId': { S: messageId },
            ':false': { BOOL: false },
            ':ttl': { N: String(Math.ceil(now() / 1_000) + DELETION_MEMORY_DAYS * 86_400) },
          },
        }),
      )
      return true
    } catch (error) {
      if (isConditionFailed(error)) return false
      throw error
    }
  },

  finish: async (person, { messageId }) => {
    try {
      await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: markKey(person),
          UpdateExpression: 'SET doneBy = :messageId',
          ConditionExpression: 'messageId = :messageId',
          ExpressionAttributeValues: { ':messageId': { S: messageId } },
        }),
      )
    } catch (error) {
      // A later deletion was marked meanwhile: it stands, and its own record finishes it.
      if (!isConditionFailed(error)) throw error
    }
  },
})
