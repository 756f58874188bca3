import { Logger } from '@aws-lambda-powertools/logger'
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics'

/**
 * Logs and metrics of the relay. Logs are JSON lines (Powertools Logger) carrying messageIds,
 * types, counts and outcomes, never traits or properties: those hold personal data.
 * Metrics are CloudWatch EMF in one namespace, so the dashboard and alarms can find them.
 * https://docs.powertools.aws.dev/lambda/typescript/latest/core/metrics/
 */

export const SERVICE_NAME = 'segment-courier-relay'
export const METRICS_NAMESPACE = 'SegmentCourierRelay'

/** Every metric the relay emits, with its unit: the dashboard is built from this list too. */
export const METRIC_UNITS = {
  Received: MetricUnit.Count,
  Enqueued: MetricUnit.Count,
  Rejected: MetricUnit.Count,
  /** Ingest requests answered with an error status (401, 400, 413, 503 …). */
  RequestsRefused: MetricUnit.Count,
  Delivered: MetricUnit.Count,
  Skipped: MetricUnit.Count,
  /** Events not sent because their person was deleted after Segment received them. */
  Erased: MetricUnit.Count,
  Retried: MetricUnit.Count,
  RateLimited: MetricUnit.Count,
  DeadLettered: MetricUnit.Count,
  DeliveryLatency: MetricUnit.Milliseconds,
  /**
   * The rate one deliver instance paces an endpoint class at (requests/s, dimension
   * `endpointClass`): the Courier limit it has learnt. Emitted once per invocation per class used.
   */
  CourierRate: MetricUnit.CountPerSecond,
} as const

export type MetricName = keyof typeof METRIC_UNITS

export const createLogger = (functionName: string): Logger =>
  new Logger({ serviceName: SERVICE_NAME, persistentKeys: { relayFunction: functionName } })

/**
 * Every metric carries the dimensions `service` and `stage`: two stages deployed in one account
 * (dev and prod) write to the same namespace, and only the stage keeps their numbers apart. The
 * dashboard of each stage (serverless.yml) reads its own.
 */
export const createMetrics = (stage: string): Metrics =>
  new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME, defaultDimensions: { stage } })

export const addMetric = (metrics: Metrics | undefined, name: MetricName, value: number): void => {
  if (metrics !== undefined && value > 0) metrics.addMetric(name, METRIC_UNITS[name], value)
}

/**
 * One value with an extra dimension, flushed at once (Powertools' singleMetric): the instance's
 * rate for one endpoint class.
 * https://docs.powertools.aws.dev/lambda/typescript/latest/features/metrics/#single-metric
 */
export const addClassMetric = (
  metrics: Metrics | undefined,
  name: MetricName,
  endpointClass: string,
  value: number,
): void => {
  if (metrics === undefined || !Number.isFinite(value)) return
  const single = metrics.singleMetric()
  single.addDimension('endpointClass', endpointClass)
  single.addMetric(name, METRIC_UNITS[name], value)
}

/** Long lists of messageIds are cut in logs; the count is always complete. */
export const MAX_LOGGED_IDS = 200

export const idsForLog = (
  ids: readonly (string | undefined)[],
): { messageIds: string[]; messageIdsTruncated?: true } =>
  ids.length > MAX_LOGGED_IDS
    ? { messageIds: ids.slice(0, MAX_LOGGED_IDS).map(String), messageIdsTruncated: true }
    : { messageIds: ids.map(String) }
