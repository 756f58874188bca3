import { setTimeout as sleep } from 'node:timers/promises'
import { type AttributeValue, BatchGetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb'

/**
 * Strongly consistent reads of many items of the membership table, for the list sync's ledger,
 * deliver's deletion marks and the fleet's learnt rates: BatchGetItem takes at most 100 keys a
 * call and may leave some `UnprocessedKeys`, which are asked again after 100 then 200 ms, at most
 * 3 times.
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html
 */

const BATCH_GET_MAX_KEYS = 100
const UNPROCESSED_ATTEMPTS = 3

export type Item = Record<string, AttributeValue>

const chunks = <T>(items: readonly T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size))

/**
 * Every item found for `keys` (in no order; a key with no item has none), read with
 * `ConsistentRead`, projected to `projection` with its `#names`. Throws when DynamoDB still leaves
 * keys unprocessed after the last attempt, or when a call fails.
 */
export const consistentBatchGet = async (
  client: DynamoDBClient,
  tableName: string,
  keys: readonly Item[],
  projection: { readonly expression: string; readonly names: Record<string, string> },
): Promise<Item[]> => {
  const found: Item[] = []
  await Promise.all(
    chunks(keys, BATCH_GET_MAX_KEYS).map(async (chunk) => {
      let pending: Item[] = chunk
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt >= UNPROCESSED_ATTEMPTS) throw new Error('DynamoDB left keys unprocessed (BatchGetItem)')
        if (attempt > 0) await sleep(50 * 2 ** attempt)
        const result = await client.send(
          new BatchGetItemCommand({
            RequestItems: {
              [tableName]: {
                Keys: pending,
                ConsistentRead: true,
                ProjectionExpression: projection.expression,
                ExpressionAttributeNames: projection.names,
              },
            },
          }),
        )
        found.push(...(result.Responses?.[tableName] ?? []))
        pending = result.UnprocessedKeys?.[tableName]?.Keys ?? []
      }
    }),
  )
  return found
}
