/**
 * The deliver side of the benchmark in its own process, as it runs in its own Lambda: it
 * drains the parent's embedded SQS into the parent's Courier sandbox with INSTANCES deliver
 * instances, until EXPECT records are deleted (then prints its peak memory) or until SIGTERM.
 * COLD_START=slow-start gives each instance the pacers of the relay before (paced from 1
 * request/s); FIXED=1 the relay before it learnt Courier's limit (never paced, a 429 parks the
 * batch for RATE_LIMIT_DELAY_SECONDS); SHARE_LEARNT=0 leaves the fleet's learnt rate out;
 * CHURN_EVERY_SECONDS=N replaces one instance by a cold one every N s (between two of its
 * invocations, as Lambda retires instances); SAY_READY prints `{"ready":true}` once its pollers run.
 */
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT'
process.env.POWERTOOLS_METRICS_DISABLED = 'true'

const { parseConfig } = await import('../../lib/config.ts')
const { createDeliverHandler } = await import('../../lib/deliver/handler.ts')
const { createSqsClient } = await import('../../lib/queue/sqs-client.ts')
const { startPoller } = await import('../../lib/local/sqs-poller.ts')
const { createPacers, unpaced } = await import('../../lib/courier/pacer.ts')

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
const coldInstance = () =>
  createDeliverHandler({
    config,
    sqs,
    ...(process.env.SHARE_LEARNT === '0' ? { learntRates: null } : {}),
    ...(process.env.FIXED === '1' ? { pacerFor: () => unpaced } : {}),
    ...(process.env.COLD_START === 'slow-start'
      ? {
          pacerFor: createPacers({
            maxRps: config.courier.maxRps,
            instances: config.delivery.eventSourceMaxConcurrency,
            coldStart: 'slow-start',
          }),
        }
      : {}),
  })
const handlers = Array.from({ length: instances }, coldInstance)
// Each instance's init work ends before its first event, as functions/deliver.ts awaits it.
await Promise.all(handlers.map((handler) => handler.ready))
const churnEverySeconds = Number(process.env.CHURN_EVERY_SECONDS ?? 0)
let replaced = 0
const churning =
  churnEverySeconds > 0
    ? setInterval(() => {
        const slot = replaced++ % instances
        const next = coldInstance()
        // a new Lambda instance takes its first event once its init has ended
        void next.ready.then(() => {
          handlers[slot] = next
        })
      }, churnEverySeconds * 1_000)
    : undefined
const started = performance.now()
const poller = startPoller({
  sqs,
  queueUrl: process.env.QUEUE_URL as string,
  queueArn: process.env.QUEUE_ARN as string,
  // each poller slot invokes whichever instance holds it now
  handler: handlers.map(
    (_, slot) => (event, context) => (handlers[slot] as (typeof handlers)[number])(event, context),
  ),
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
clearInterval(churning)
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
