import type { AddressInfo } from 'node:net'
import { CreateTableCommand } from '@aws-sdk/client-dynamodb'
import dynalite from 'dynalite'
import {
  createDynamoDbClient,
  createMembershipLedger,
  type DynamoDbTimeouts,
  MEMBERSHIP_TABLE_KEYS,
  type MembershipLedger,
} from '../audiences/membership-ledger.ts'
import { LOOPBACK } from './loopback.ts'

/**
 * The embedded DynamoDB for `npm start` and the tests: dynalite in process, in memory, speaking
 * DynamoDB's JSON protocol and refusing what DynamoDB refuses (key sizes, table names, condition
 * and batch rules), with the membership ledger's table created as serverless.yml declares it.
 * TTL is not emulated: expiry matters only after weeks, and the table lives as long as the process.
 * https://github.com/architect/dynalite
 */

export interface LocalDynamoDb {
  /** The endpoint to give the SDK (AWS_ENDPOINT_URL_DYNAMODB). */
  readonly endpoint: string
  /** The membership ledger's table (AUDIENCE_TABLE_NAME). */
  readonly tableName: string
  /** Creates another table like the ledger's (a test's own, empty). */
  readonly createTable: (name: string) => Promise<void>
  /** A list sync instance's ledger on `table` (default tableName): its own client, as each Lambda instance has. */
  readonly ledger: (table?: string) => MembershipLedger
  readonly stop: () => Promise<void>
}

export interface LocalDynamoDbOptions {
  /** 0 (the default) picks a free port: nothing outside the process needs to reach it. */
  readonly port?: number
  readonly tableName?: string
  /** Bounds for the ledger clients' calls (default LEDGER_TIMEOUTS, as deployed); tests widen them. */
  readonly timeouts?: DynamoDbTimeouts
}

export const LOCAL_MEMBERSHIP_TABLE = 'segment-courier-relay-memberships'

export const startLocalDynamoDb = async (options: LocalDynamoDbOptions = {}): Promise<LocalDynamoDb> => {
  // createTableMs: 0, a new table is ACTIVE at once (DynamoDB takes seconds; nothing here waits on it).
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, LOOPBACK, () => resolve())
  })
  const endpoint = `http://${LOOPBACK}:${(server.address() as AddressInfo).port}`
  const tableName = options.tableName ?? LOCAL_MEMBERSHIP_TABLE
  const client = () =>
    createDynamoDbClient(
      { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } },
      options.timeouts,
    )
  const createTable = async (name: string) => {
    const admin = client()
    try {
      await admin.send(
        new CreateTableCommand({ TableName: name, BillingMode: 'PAY_PER_REQUEST', ...MEMBERSHIP_TABLE_KEYS }),
      )
    } finally {
      admin.destroy()
    }
  }
  await createTable(tableName)
  return {
    endpoint,
    tableName,
    createTable,
    ledger: (table = tableName) => createMembershipLedger(client(), table),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.()
        server.close(() => resolve())
      }),
  }
}
