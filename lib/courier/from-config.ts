import type { Logger } from '@aws-lambda-powertools/logger'
import type { Metrics } from '@aws-lambda-powertools/metrics'
import type { SQSClient } from '@aws-sdk/client-sqs'
import type { Random } from '../backoff.ts'
import { type Config, courierAuthToken } from '../config.ts'
import { resolveSecret } from '../secrets.ts'
import { type CourierClient, createCourierClient } from './client.ts'
import type { PacerFor } from './pacer.ts'

/** What a function that drains a queue into Courier is built from; each is made from the configuration when absent (tests replace them). */
export interface CourierFunctionOptions {
  readonly config?: Config
  readonly sqs?: SQSClient
  readonly courier?: CourierClient
  readonly logger?: Logger
  readonly metrics?: Metrics
  /** Replaces the instance's adaptive pacers (tests). */
  readonly pacerFor?: PacerFor
  readonly random?: Random
}

/** The Courier client of a function instance, as configured: its token resolved (and cached) when a call needs it. */
export const courierFrom = (config: Config): CourierClient => {
  const ref = courierAuthToken(config)
  return createCourierClient({
    baseUrl: config.courier.baseUrl,
    timeoutMs: config.courier.timeoutMs,
    authToken: async () =>
      (await resolveSecret('COURIER_AUTH_TOKEN', ref, config.secretsCacheSeconds)) as string,
  })
}
