import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { GetQueueAttributesCommand, ListQueuesCommand, type SQSClient } from '@aws-sdk/client-sqs'

/**
 * SQS with message move tasks: a loopback server in front of the embedded SQS (fauxqs, which has
 * no StartMessageMoveTask), answering StartMessageMoveTask itself by the rules AWS documents and
 * passing every other request through unchanged, so the queues, their ARNs and redrive policies
 * are real ones.
 *
 * The rules, each from AWS's documentation:
 * - the source must be a queue that another SQS queue's RedrivePolicy names as its dead-letter
 *   queue ("currently limited to supporting message redrive from queues that are configured as
 *   dead-letter queues (DLQs) of other Amazon SQS queues");
 * - only one active message movement task per queue at any given time;
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html
 * - the destination is the DLQ's original source queue, or another queue "if both queues are the
 *   same type": a FIFO DLQ redrives only to a FIFO queue, a standard one only to a standard one;
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html
 * - SourceArn and DestinationArn are queue ARNs; one that names no queue is ResourceNotFoundException
 *   (the API reference's error list). Without DestinationArn each message goes back to the queue it
 *   was moved from, which a message sent straight to the DLQ does not have: the task records it.
 * The reference names no error code for the first two rules; InvalidParameterValue is what AWS
 * answers there, as reported where emulators were checked against it
 * (https://github.com/floci-io/floci/issues/897). The messages are this stub's own wording.
 */

export interface MoveTask {
  readonly taskHandle: string
  readonly sourceArn: string
  /** undefined: each message's original source queue. */
  readonly destinationArn: string | undefined
  status: 'RUNNING' | 'COMPLETED'
}

export interface SqsWithMoveTasks {
  /** Give this to the SDK as its endpoint. */
  readonly url: string
  readonly tasks: MoveTask[]
  /** Every StartMessageMoveTask request body, refused ones included. */
  readonly starts: Record<string, unknown>[]
  /** Ends every running task, as SQS does once the DLQ is drained. */
  completeAll(): void
  stop(): Promise<void>
}

interface QueueFacts {
  readonly arn: string
  readonly fifo: boolean
  /** The DLQ its RedrivePolicy names, if any. */
  readonly deadLetterTarget: string | undefined
}

const queueFacts = async (sqs: SQSClient): Promise<Map<string, QueueFacts>> => {
  const { QueueUrls = [] } = await sqs.send(new ListQueuesCommand({}))
  const facts = new Map<string, QueueFacts>()
  for (const url of QueueUrls) {
    const { Attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }),
    )
    const arn = Attributes.QueueArn ?? ''
    const policy = Attributes.RedrivePolicy
      ? (JSON.parse(Attributes.RedrivePolicy) as { deadLetterTargetArn?: string })
      : undefined
    facts.set(arn, {
      arn,
      fifo: Attributes.FifoQueue === 'true',
      deadLetterTarget: policy?.deadLetterTargetArn,
    })
  }
  return facts
}

type Answer = { status: number; body: unknown; headers?: Record<string, string> }

const fault = (status: number, type: string, message: string, queryCode: string): Answer => ({
  status,
  body: { __type: `com.amazonaws.sqs#${type}`, message },
  headers: { 'x-amzn-query-error': `${queryCode};Sender` },
})

/** `inner`: a client of the embedded SQS, used to read the queues' ARNs, types and redrive policies. */
export const startSqsWithMoveTasks = async (
  endpoint: string,
  inner: SQSClient,
): Promise<SqsWithMoveTasks> => {
  const tasks: MoveTask[] = []
  const starts: Record<string, unknown>[] = []
  let next = 1

  const startTask = async (input: Record<string, unknown>): Promise<Answer> => {
    starts.push(input)
    const sourceArn = typeof input.SourceArn === 'string' ? input.SourceArn : ''
    const destinationArn = typeof input.DestinationArn === 'string' ? input.DestinationArn : undefined
    const queues = await queueFacts(inner)
    const source = queues.get(sourceArn)
    if (!source) {
      return fault(
        400,
        'ResourceNotFoundException',
        `The resource ${sourceArn} does not exist.`,
        'ResourceNotFoundException',
      )
    }
    if (![...queues.values()].some((queue) => queue.deadLetterTarget === sourceArn)) {
      return fault(
        400,
        'InvalidParameterValue',
        `${sourceArn} is not the dead-letter queue of any queue.`,
        'InvalidParameterValue',
      )
    }
    if (tasks.some((task) => task.sourceArn === sourceArn && task.status === 'RUNNING')) {
      return fault(
        400,
        'InvalidParameterValue',
        `A message movement task is already running for ${sourceArn}: one active task per queue.`,
        'InvalidParameterValue',
      )
    }
    if (destinationArn !== undefined) {
      const destination = queues.get(destinationArn)
      if (!destination) {
        return fault(
          400,
          'ResourceNotFoundException',
          `The resource ${destinationArn} does not exist.`,
          'ResourceNotFoundException',
        )
      }
      if (destination.fifo !== source.fifo) {
        return fault(
          400,
          'InvalidParameterValue',
          `A ${source.fifo ? 'FIFO' : 'standard'} dead-letter queue redrives only to a ${source.fifo ? 'FIFO' : 'standard'} queue.`,
          'InvalidParameterValue',
        )
      }
    }
    const taskHandle = `task-${next++}`
    tasks.push({ taskHandle, sourceArn, destinationArn, status: 'RUNNING' })
    return { status: 200, body: { TaskHandle: taskHandle } }
  }

  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', async () => {
      const body = Buffer.concat(chunks)
      try {
        if (request.headers['x-amz-target'] === 'AmazonSQS.StartMessageMoveTask') {
          const answer = await startTask(JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>)
          response.writeHead(answer.status, {
            'content-type': 'application/x-amz-json-1.0',
            ...answer.headers,
          })
          response.end(JSON.stringify(answer.body))
          return
        }
        const passed = await fetch(new URL(request.url ?? '/', endpoint), {
          method: request.method ?? 'POST',
          headers: forwardable(request.headers),
          ...(request.method === 'GET' || request.method === 'HEAD' ? {} : { body }),
        })
        const headers: Record<string, string> = {}
        passed.headers.forEach((value, name) => {
          if (name !== 'content-length' && name !== 'transfer-encoding' && name !== 'connection')
            headers[name] = value
        })
        response.writeHead(passed.status, headers)
        response.end(Buffer.from(await passed.arrayBuffer()))
      } catch (error) {
        response.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' })
        response.end(JSON.stringify({ __type: 'com.amazonaws.sqs#InternalError', message: String(error) }))
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    tasks,
    starts,
    completeAll: () => {
      for (const task of tasks) task.status = 'COMPLETED'
    },
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((error) => (error ? reject(error) : resolve()))
      }),
  }
}

const forwardable = (headers: IncomingHttpHeaders): Record<string, string> => {
  const kept: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name === 'host' || name === 'content-length' || name === 'connection') continue
    kept[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return kept
}
