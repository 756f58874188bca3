import { DeleteMessageBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs'
import type { SQSBatchResponse } from 'aws-lambda'
import { createAudienceSyncHandler } from '../../lib/audiences/handler.ts'
import type { MembershipLedger } from '../../lib/audiences/membership-ledger.ts'
import { parseConfig } from '../../lib/config.ts'
import { createPacer, type PacerFor, unpaced } from '../../lib/courier/pacer.ts'
import { createLambdaContext } from '../../lib/local/lambda-context.ts'
import { recordsToDelete, toSqsRecord } from '../../lib/local/sqs-poller.ts'
import { createLogger } from '../../lib/telemetry.ts'
import type { TestRelay } from './relay.ts'

/** List writes paced fast enough for a test; the benchmark measures Courier's real 20 a minute. */
export const fastLists: PacerFor = (endpoint) => (endpoint === 'lists' ? createPacer(50) : unpaced)

/**
 * One list sync invocation (a fresh instance, 60 s to run, the relay's ledger unless another is
 * given) over up to 10 messages of the audience queue, then what its event source does: deletes
 * every record not reported failed.
 */
export const syncAudienceOnce = async (
  relay: TestRelay,
  ledger: MembershipLedger = relay.ledger(),
): Promise<SQSBatchResponse> => {
  const handler = createAudienceSyncHandler({
    config: parseConfig(relay.env),
    sqs: relay.queues.sqs,
    logger: createLogger('audiences-test'),
    pacerFor: fastLists,
    ledger,
  })
  const { Messages = [] } = await relay.queues.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: relay.queues.audienceQueueUrl,
      MaxNumberOfMessages: 10,
      MessageSystemAttributeNames: ['All'],
    }),
  )
  const records = Messages.map((m) => toSqsRecord(m, relay.queues.audienceQueueArn, 'us-east-1'))
  const response = await handler({ Records: records }, createLambdaContext('audiences', 60_000))
  const done = recordsToDelete(records, response)
  if (done.length > 0) {
    await relay.queues.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: relay.queues.audienceQueueUrl,
        Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
      }),
    )
  }
  return response
}
