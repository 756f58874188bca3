/**
 * The services of the benchmark's isolation rows in a process of their own, as SQS and Courier
 * run apart from both Lambdas: the embedded SQS and the Courier sandbox. Prints one JSON line with
 * their addresses, then serves until SIGTERM. Faults are set over the sandbox's control routes
 * (POST /_sandbox/faults); `GET /_sandbox/received` is not used (it would copy every body), the
 * answer counts are printed as a JSON line on SIGUSR2 instead.
 */
process.env.AWS_REGION ??= 'us-east-1'
process.env.AWS_ACCESS_KEY_ID ??= 'bench'
process.env.AWS_SECRET_ACCESS_KEY ??= 'bench'

const { startCourierSandbox } = await import('../../lib/local/courier-sandbox.ts')
const { startLocalQueues } = await import('../../lib/local/queues.ts')

const queues = await startLocalQueues({ visibilityTimeoutSeconds: 30 })
const sandbox = await startCourierSandbox({ authToken: 'bench' })
process.on('SIGUSR2', () => {
  const refused = sandbox.received.filter((r) => r.status === 429).length
  console.log(JSON.stringify({ received: sandbox.received.length, refused }))
})
process.on('SIGTERM', async () => {
  await sandbox.stop()
  await queues.stop()
  process.exit(0)
})
console.log(
  JSON.stringify({
    endpoint: queues.endpoint,
    queueUrl: queues.queueUrl,
    queueArn: queues.queueArn,
    dlqUrl: queues.dlqUrl,
    audienceQueueUrl: queues.audienceQueueUrl,
    sandboxUrl: sandbox.url,
  }),
)
