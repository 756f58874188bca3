import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs'

/**
 * One SQS client per function, created at cold start and reused across invocations.
 * Locally and in tests `AWS_ENDPOINT_URL_SQS` (read by the SDK itself) or an explicit
 * `endpoint` points it at the embedded emulator.
 * https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html
 */
export const createSqsClient = (overrides: SQSClientConfig = {}): SQSClient =>
  new SQSClient({
    // The relay retries with its own deadline-aware backoff; one SDK retry covers a dropped socket.
    maxAttempts: 2,
    ...overrides,
  })
