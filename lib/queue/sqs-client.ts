import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs'

/**
 * One SQS client per function, created at cold start and reused across invocations.
 * Locally and in tests `AWS_ENDPOINT_URL_SQS` points it at the embedded emulator. It is passed
 * as an explicit endpoint: the SQS client otherwise sends each call to the host in the queue
 * URL, and an emulator's queue URL host (sqs.us-east-1.localhost) does not resolve everywhere.
 * https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html
 */
export const createSqsClient = (overrides: SQSClientConfig = {}): SQSClient => {
  const endpoint = process.env.AWS_ENDPOINT_URL_SQS
  return new SQSClient({
    // The relay retries with its own deadline-aware backoff; one SDK retry covers a dropped socket.
    maxAttempts: 2,
    ...(endpoint ? { endpoint } : {}),
    ...overrides,
  })
}
