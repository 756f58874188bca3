import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb'

/**
 * The DynamoDB client of every function that reads the membership table (the list sync's ledger,
 * deliver's deletion marks, `npm run dlq`), with its calls bounded as the SQS calls are.
 */

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
