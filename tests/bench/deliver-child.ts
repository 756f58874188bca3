/**
 * The deliver side of the benchmark in its own process, as it runs in its own Lambda: it
 * drains the parent's embedded SQS into the parent's Courier sandbox with INSTANCES deliver
 * instances, until EXPECT records are deleted (then prints its peak memory) or until SIGTERM.
 * COLD_START=slow-start gives each instance the pacers of the relay before (paced from 1
 * request/s); SAY_READY prints `{"ready":true}` once its pollers run.
 */
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT'
process.env.POWERTOOLS_METRICS_DISABLED = 'true'

const { parseConfig } = await import('../../lib/config.ts')
const { createDeliverHandler } = await import('../../lib/deliver/handler.ts')
const { createSqsClient } = await import('../../lib/queue/sqs-client.ts')
const { startPoller } = await import('../../lib/local/sqs-poller.ts')
const { createPacers } = await import('../../lib/courier/pacer.ts')

const sqs = createSqsClient({ endpoint: process.env.SQS_ENDPOINT as string })
const expected = Number(process.env.EXPECT ?? Number.POSITIVE_INFINITY)
const instances = Number(process.env.INSTANCES ?? 1)
const config = parseConfig(process.env)
let peakHeap = 0
let peakExternal = 0
const sample = setInterval(() => {
  const usage = process.memoryUsage()
  peakHeap = Math.max(peakHeap, usage.heapUsed)
  peakExternal = Math.max(peakExternal, usage.external)
}, 20)
const handlers = Array.from({ length: instances }, () =>
  createDeliverHandler({
    config,
    sqs,
    ...(process.env.COLD_START === 'slow-start'
      ? {
          pacerFor: createPacers({
            maxRps: config.courier.maxRps,
            instances: config.delivery.eventSourceMaxConcurrency,
            coldStart: 'slow-start',
          }),
        }
      : {}),
  }),
)
// Each instance's init work ends before its first event, as functions/deliver.ts awaits it.
await Promise.all(handlers.map((handler) => handler.ready))
const started = performance.now()
const poller = startPoller({
  sqs,
  queueUrl: process.env.QUEUE_URL as string,
  queueArn: process.env.QUEUE_ARN as string,
  handler: handlers,
  maxConcurrency: instances,
  waitTimeSeconds: 1,
  functionTimeoutMs: 60_000,
})
if (process.env.SAY_READY) console.log(JSON.stringify({ ready: true }))
let stopping = false
process.on('SIGTERM', () => {
  stopping = true
})
while (poller.stats.deleted < expected && !stopping) await new Promise((resolve) => setTimeout(resolve, 50))
const seconds = (performance.now() - started) / 1_000
await poller.stop()
clearInterval(sample)
console.log(
  JSON.stringify({
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    peakHeapMiB: peakHeap / 1024 / 1024,
    peakExternalMiB: peakExternal / 1024 / 1024,
    idleRssMiB: process.memoryUsage().rss / 1024 / 1024,
    seconds,
  }),
)
process.exit(0)
