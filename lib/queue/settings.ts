/**
 * The queue settings the deployed stack and the local emulator share, so a local run redrives
 * and retains exactly as production does. serverless.yml repeats these numbers as parameters;
 * a test checks the generated template against this file.
 */
export const QUEUE_SETTINGS = {
  /** 14 days, the SQS maximum: a long Courier outage never ages events out. */
  retentionSeconds: 1_209_600,
  /**
   * Receives before SQS moves a message to the DLQ on its own. The deliver function dead-letters
   * permanent failures itself, so this only ends retries of transient ones. Every retry waits
   * at least ceil(RETRY_BASE_SECONDS / 2) and on average half the backoff ceiling, which reaches
   * RETRY_MAX_SECONDS (900 s) by the 8th receive: 1000 receives ≈ 7 × ~90 s + 993 × ~450 s
   * ≈ 5 days of outage on average, far past the 24 h target (the full arithmetic is in serverless.yml).
   */
  maxReceiveCount: 1_000,
} as const

/**
 * The FIFO queues' attributes: high-throughput mode (deduplication and throughput per message
 * group, i.e. per user) and deduplication ids given by the relay (Segment's messageId), never
 * derived from the body. serverless.yml sets the same; a test checks the template against this.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/high-throughput-fifo.html
 */
export const FIFO_ATTRIBUTES = {
  FifoQueue: 'true',
  ContentBasedDeduplication: 'false',
  DeduplicationScope: 'messageGroup',
  FifoThroughputLimit: 'perMessageGroupId',
} as const
