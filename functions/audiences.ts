/**
 * Audience queue → Courier lists, invoked by the SQS event source mapping with
 * ReportBatchItemFailures. Everything lives in lib/; this file only builds the handler once.
 */
import { createAudienceSyncHandler } from '../lib/audiences/handler.ts'

export const handler = createAudienceSyncHandler()
