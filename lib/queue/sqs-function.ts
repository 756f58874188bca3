import type { Logger } from '@aws-lambda-powertools/logger'
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware'
import type { Metrics } from '@aws-lambda-powertools/metrics'
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware'
import middy, { type MiddlewareObj } from '@middy/core'
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda'
import { userKeySecretLoader } from '../user-key.ts'

/**
 * A function the SQS event source invokes with ReportBatchItemFailures, with the middlewares every
 * such function of the relay runs: the Lambda context in its logs, its metrics flushed once per
 * invocation, the user-key secret loaded before any log line names a person.
 * https://middy.js.org/docs/intro/how-it-works
 */
export type SqsBatchHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>

export const sqsBatchFunction = (
  handler: SqsBatchHandler,
  parts: {
    readonly logger: Logger
    readonly metrics: Metrics
    readonly secretsCacheSeconds: number
    /** The function's own, after those (their `before` runs last, their `after` first). */
    readonly middlewares?: readonly MiddlewareObj<SQSEvent, SQSBatchResponse>[]
  },
): SqsBatchHandler =>
  middy<SQSEvent, SQSBatchResponse>(handler)
    .use(injectLambdaContext(parts.logger))
    .use(logMetrics(parts.metrics))
    .use(userKeySecretLoader(parts.secretsCacheSeconds))
    .use([...(parts.middlewares ?? [])]) as unknown as SqsBatchHandler
