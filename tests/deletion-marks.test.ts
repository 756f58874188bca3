import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { memberKey } from '../lib/audiences/membership-ledger.ts'
import { createDeletionMarks, DELETED_PEOPLE, markMemberKey } from '../lib/deletion-marks.ts'
import { createDynamoDbClient } from '../lib/dynamodb-client.ts'
import { type LocalDynamoDb, startLocalDynamoDb } from '../lib/local/dynamodb.ts'

/** The deletion marks on the embedded DynamoDB (dynalite): forward only, read in one batch, done once. */

let dynamodb: LocalDynamoDb
beforeAll(async () => {
  dynamodb = await startLocalDynamoDb()
})
afterAll(() => dynamodb.stop())

const marksOn = () =>
  createDeletionMarks(
    createDynamoDbClient({
      endpoint: dynamodb.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    }),
    dynamodb.tableName,
  )

describe('deletion marks', () => {
  it('reads the marks of a batch’s people in one go; those never deleted are absent', async () => {
    const marks = marksOn()
    await marks.mark('del-a', { at: 1_000, messageId: 'm-a' })

    const read = await marks.read(['del-a', 'never-deleted', 'del-a'])

    expect([...read.entries()]).toEqual([['del-a', { at: 1_000, messageId: 'm-a', done: false }]])
  })

  it('moves a mark only forward: an older deletion marked after a later one is refused', async () => {
    const marks = marksOn()

    const later = await marks.mark('del-b', { at: 2_000, messageId: 'm-later' })
    const older = await marks.mark('del-b', { at: 1_000, messageId: 'm-older' })

    expect([later, older]).toEqual([true, false])
    expect((await marks.read(['del-b'])).get('del-b')?.messageId).toBe('m-later')
  })

  it('is done only for the deletion that finished; a new deletion of the person is not done', async () => {
    const marks = marksOn()
    await marks.mark('del-c', { at: 1_000, messageId: 'm-1' })
    await marks.finish('del-c', { at: 1_000, messageId: 'm-1' })
    const first = (await marks.read(['del-c'])).get('del-c')

    await marks.mark('del-c', { at: 5_000, messageId: 'm-2' })
    // The first deletion's retry finishing late does not mark the second one done.
    await marks.finish('del-c', { at: 1_000, messageId: 'm-1' })
    const second = (await marks.read(['del-c'])).get('del-c')

    expect(first).toEqual({ at: 1_000, messageId: 'm-1', done: true })
    expect(second).toEqual({ at: 5_000, messageId: 'm-2', done: false })
  })

  it('keys a userId too long for DynamoDB’s sort key by its hash, and reads it back by the id', async () => {
    const marks = marksOn()
    const long = 'x'.repeat(2_000)

    await marks.mark(long, { at: 1_000, messageId: 'm-long' })

    expect(markMemberKey(long)).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect((await marks.read([long])).get(long)?.messageId).toBe('m-long')
    expect(DELETED_PEOPLE).not.toContain('-')
  })

  it('is the very item the list sync reads as the person’s deletion (the ledger’s key of the pseudo-list)', () => {
    for (const person of ['u-1', 'x'.repeat(2_000)]) {
      expect(memberKey(DELETED_PEOPLE, person)).toEqual({
        list: { S: DELETED_PEOPLE },
        member: { S: markMemberKey(person) },
      })
    }
  })
})
