/**
 * SQS → Courier worker, invoked by the SQS event source mapping with
 * ReportBatchItemFailures. Everything lives in lib/; this file only builds the handler once.
 */
import { createDeliverHandler } from '../lib/deliver/handler.ts'

export const handler = createDeliverHandler()
