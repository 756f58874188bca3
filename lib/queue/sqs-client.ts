import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs'

/**
 * One SQS client per function, created at cold start and reused across invocations.
 * Locally and in tests `AWS_ENDPOINT_URL_SQS` points it at the embedded emulator. It is passed
 * as an explicit endpoint: the SQS client otherwise sends each call to the host in the queue
 * URL, and an emulator's queue URL host (sqs.us-east-1.localhost) does not resolve everywhere.
 * https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html
 */

/**
 * How long one SQS call may take, so the deliver function can keep enough of its invocation to
 * finish (lib/queue/settle-batch.ts): the SDK's defaults wait for ever on a connection or an answer.
 * SQS answers in tens of milliseconds; a call that has not in a second is retried once.
 * https://docs.aws.amazon.com/sdk-for-javascript/v3/developer-guide/node-configuring-maxsockets.html
 */
export interface SqsTimeouts {
  /** Attempts per call, the first included (the SDK's maxAttempts). */
  readonly maxAttempts: number
  readonly connectionTimeoutMs: number
  readonly requestTimeoutMs: number
}

export const SQS_TIMEOUTS: SqsTimeouts = {
  maxAttempts: 2,
  connectionTimeoutMs: 1_000,
  requestTimeoutMs: 1_000,
}

/**
 * The SDK's standard retry mode waits at most 2 × 500 ms (throttling base) before the second
 * attempt. https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
 */
const RETRY_WAIT_MS = 1_000

/** Pure: the longest one call can take, every attempt timing out and the SDK's wait between them. */
export const sqsCallBudgetMs = (timeouts: SqsTimeouts = SQS_TIMEOUTS): number =>
  timeouts.maxAttempts * (timeouts.connectionTimeoutMs + timeouts.requestTimeoutMs) +
  (timeouts.maxAttempts - 1) * RETRY_WAIT_MS

/**
 * `timeouts` bound every call (the deliver function); without them calls may wait as long as
 * they need, which long polls (the local poller, the CLIs) do.
 */
export const createSqsClient = (overrides: SQSClientConfig = {}, timeouts?: SqsTimeouts): SQSClient => {
  const endpoint = process.env.AWS_ENDPOINT_URL_SQS
  return new SQSClient({
    // The relay retries with its own deadline-aware backoff; one SDK retry covers a dropped socket.
    maxAttempts: timeouts?.maxAttempts ?? 2,
    ...(timeouts
      ? {
          requestHandler: {
            connectionTimeout: timeouts.connectionTimeoutMs,
            requestTimeout: timeouts.requestTimeoutMs,
            // Without it a request past requestTimeout is only warned about, not ended.
            throwOnRequestTimeout: true,
          },
        }
      : {}),
    ...(endpoint ? { endpoint } : {}),
    ...overrides,
  })
}
