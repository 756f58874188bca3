/**
 * SQS → Courier worker, invoked by the SQS event source mapping with
 * ReportBatchItemFailures. Everything lives in lib/; this file only builds the handler once.
 *
 * The top-level await keeps the instance's init work (the fleet's learnt Courier rate, a bounded
 * DynamoDB read) inside Lambda's init phase, which Lambda may run before any event arrives:
 * https://aws.amazon.com/blogs/compute/using-node-js-es-modules-and-top-level-await-in-aws-lambda/
 */
import { createDeliverHandler } from '../lib/deliver/handler.ts'

export const handler = createDeliverHandler()
await handler.ready
