/**
 * Segment webhook → SQS. API Gateway HTTP API (payload v2) or a Lambda Function URL invokes
 * this for `POST /segment`. Everything lives in lib/; this file only builds the handler once.
 */
import { createIngestHandler } from '../lib/ingest/handler.ts'

export const handler = createIngestHandler()
