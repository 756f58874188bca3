import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { inflateRawSync } from 'node:zlib'
import { beforeAll, describe, expect, it } from 'vitest'
import { QUEUE_SETTINGS } from '../lib/queue-settings.ts'
import { METRIC_UNITS } from '../lib/telemetry.ts'

/**
 * Builds the real deployment offline (`osls package`, no AWS credentials) and checks the
 * CloudFormation template and the function zips: what would reach AWS is what is tested.
 */

const SENTINELS = {
  COURIER_AUTH_TOKEN: 'SENTINEL_COURIER_TOKEN_91f3',
  SEGMENT_SHARED_SECRET: 'SENTINEL_SHARED_SECRET_91f3',
  INGEST_TOKEN: 'SENTINEL_INGEST_TOKEN_91f3',
}

type Resource = { Type: string; Properties: Record<string, unknown>; Condition?: string }
type Template = {
  Resources: Record<string, Resource>
  Outputs: Record<string, unknown>
  Parameters: Record<string, { Type: string; Default: string }>
}
type Statement = { Effect: string; Action: string | string[]; Resource: unknown }

let template: Template
let templateText: string

const pack = (args: string[] = []) =>
  execFileSync(new URL('../node_modules/.bin/osls', import.meta.url).pathname, ['package', ...args], {
    cwd: new URL('..', import.meta.url),
    env: { ...process.env, ...SENTINELS, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: '' },
    encoding: 'utf8',
    stdio: 'pipe',
  })

const read = (name: string) => readFileSync(new URL(`../.serverless/${name}`, import.meta.url))

/** The files in a zip, inflated, read from its central directory (no unzip binary needed). */
const unzip = (zip: Buffer): Map<string, Buffer> => {
  const files = new Map<string, Buffer>()
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]))
  let offset = zip.readUInt32LE(end + 16)
  for (let i = 0; i < zip.readUInt16LE(end + 10); i++) {
    const method = zip.readUInt16LE(offset + 10)
    const compressed = zip.readUInt32LE(offset + 20)
    const nameLength = zip.readUInt16LE(offset + 28)
    const extra = zip.readUInt16LE(offset + 30) + zip.readUInt16LE(offset + 32)
    const local = zip.readUInt32LE(offset + 42)
    const name = zip.toString('utf8', offset + 46, offset + 46 + nameLength)
    const dataStart = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28)
    const data = zip.subarray(dataStart, dataStart + compressed)
    files.set(name, method === 8 ? inflateRawSync(data) : Buffer.from(data))
    offset += 46 + nameLength + extra
  }
  return files
}

const resourcesOf = (type: string) => Object.entries(template.Resources).filter(([, r]) => r.Type === type)
const statementsOf = (role: string): Statement[] =>
  (template.Resources[role]!.Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[]).flatMap(
    (policy) => policy.PolicyDocument.Statement,
  )
const actions = (statement: Statement) => [statement.Action].flat()
const refs = (value: unknown) => JSON.stringify(value)

beforeAll(() => {
  pack()
  templateText = read('cloudformation-template-update-stack.json').toString('utf8')
  template = JSON.parse(templateText) as Template
}, 180_000)

describe('the packaged CloudFormation template', () => {
  it('has the events queue and DLQ with redrive, 14-day retention and SSE', () => {
    const queue = template.Resources.EventsQueue?.Properties as Record<string, unknown>
    const dlq = template.Resources.DeadLetterQueue?.Properties as Record<string, unknown>

    expect(queue.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] },
      maxReceiveCount: QUEUE_SETTINGS.maxReceiveCount,
    })
    for (const props of [queue, dlq]) {
      expect(props.MessageRetentionPeriod).toBe(QUEUE_SETTINGS.retentionSeconds)
      expect(props.SqsManagedSseEnabled).toBe(true)
    }
  })

  it('gives the queue a visibility timeout of at least 6 × the deliver timeout', () => {
    const deliver = template.Resources.DeliverLambdaFunction?.Properties as { Timeout: number }
    const queue = template.Resources.EventsQueue?.Properties as { VisibilityTimeout: number }
    expect(queue.VisibilityTimeout).toBeGreaterThanOrEqual(6 * deliver.Timeout)
  })

  it('maps the queue to deliver with ReportBatchItemFailures and a maximum concurrency matched by reserved concurrency', () => {
    const [[, mapping]] = resourcesOf('AWS::Lambda::EventSourceMapping') as [[string, Resource]]
    const deliver = template.Resources.DeliverLambdaFunction?.Properties as Record<string, unknown>

    expect(mapping.Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures'])
    expect(mapping.Properties.EventSourceArn).toEqual({ 'Fn::GetAtt': ['EventsQueue', 'Arn'] })
    const maximum = (mapping.Properties.ScalingConfig as { MaximumConcurrency: number }).MaximumConcurrency
    expect(maximum).toBeGreaterThanOrEqual(2)
    expect(deliver.ReservedConcurrentExecutions).toBeGreaterThanOrEqual(maximum)
    expect(
      (deliver.Environment as { Variables: Record<string, unknown> }).Variables.DELIVER_MAX_CONCURRENCY,
    ).toBe(String(maximum))
  })

  it('runs both functions on nodejs24.x arm64 and routes POST /segment to ingest', () => {
    for (const name of ['IngestLambdaFunction', 'DeliverLambdaFunction']) {
      const props = template.Resources[name]?.Properties as Record<string, unknown>
      expect(props.Runtime).toBe('nodejs24.x')
      expect(props.Architectures).toEqual(['arm64'])
    }
    const routes = resourcesOf('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey)
    expect(routes).toEqual(['POST /segment'])
    expect(refs(template.Outputs.WebhookUrl)).toContain('/segment')
  })

  it('scopes every SQS permission to the two queues; ingest can only send, deliver cannot send to the events queue', () => {
    const ingest = statementsOf('IngestRole')
    const deliver = statementsOf('DeliverRole')
    for (const statement of [...ingest, ...deliver].filter((s) =>
      actions(s).some((a) => a.startsWith('sqs:')),
    )) {
      const resources = [statement.Resource].flat().map(refs)
      expect(resources.length).toBeGreaterThan(0)
      for (const resource of resources) expect(resource).toMatch(/"(EventsQueue|DeadLetterQueue)","Arn"/)
    }
    expect(ingest.flatMap(actions).filter((a) => a.startsWith('sqs:'))).toEqual(['sqs:SendMessage'])
    const sendToQueue = deliver.filter(
      (s) => actions(s).includes('sqs:SendMessage') && refs(s.Resource).includes('EventsQueue'),
    )
    expect(sendToQueue).toEqual([])
    const visibility = deliver.find((s) => actions(s).includes('sqs:ChangeMessageVisibility'))
    expect(refs(visibility?.Resource)).toContain('EventsQueue')
    for (const statement of [...ingest, ...deliver].filter((s) => actions(s).includes('ssm:GetParameter'))) {
      expect(refs(statement.Resource)).not.toContain('"*"')
    }
    for (const name of ['IngestLambdaFunction', 'DeliverLambdaFunction']) {
      expect(template.Resources[name]?.Properties.Role).toEqual({
        'Fn::GetAtt': [name === 'IngestLambdaFunction' ? 'IngestRole' : 'DeliverRole', 'Arn'],
      })
    }
  })

  it('holds no secret value, only SSM parameter names that CloudFormation checks exist', async () => {
    for (const value of Object.values(SENTINELS)) expect(templateText).not.toContain(value)
    for (const zip of ['ingest.zip', 'deliver.zip']) {
      for (const [, content] of unzip(read(zip))) {
        for (const value of Object.values(SENTINELS)) expect(content.toString('utf8')).not.toContain(value)
      }
    }
    expect(template.Parameters.CourierTokenParameterName?.Type).toBe('AWS::SSM::Parameter::Name')
    expect(template.Parameters.SharedSecretParameterName?.Type).toBe('AWS::SSM::Parameter::Name')
    const ingestEnv = (
      template.Resources.IngestLambdaFunction!.Properties.Environment as { Variables: object }
    ).Variables
    expect(Object.keys(ingestEnv)).not.toContain('SEGMENT_SHARED_SECRET')
    expect(Object.keys(ingestEnv)).toContain('SEGMENT_SHARED_SECRET_PARAMETER')
  })

  it('has the three alarms and a dashboard naming every relay metric', () => {
    const alarms = resourcesOf('AWS::CloudWatch::Alarm').map(([, r]) => r.Properties.MetricName)
    expect(alarms.sort()).toEqual([
      'ApproximateAgeOfOldestMessage',
      'ApproximateNumberOfMessagesVisible',
      'Errors',
    ])
    const [[, dashboard]] = resourcesOf('AWS::CloudWatch::Dashboard') as [[string, Resource]]
    const body = refs(dashboard.Properties.DashboardBody)
    for (const metric of Object.keys(METRIC_UNITS)) expect(body).toContain(`\\"${metric}\\"`)
    for (const metric of ['ApproximateNumberOfMessagesVisible', 'ApproximateAgeOfOldestMessage']) {
      expect(body).toContain(metric)
    }
  })

  it('outputs the webhook URL and both queues', () => {
    expect(Object.keys(template.Outputs)).toEqual(
      expect.arrayContaining(['DlqArn', 'DlqUrl', 'QueueArn', 'QueueUrl', 'WebhookUrl']),
    )
  })

  it('ships each function as one bundled ESM file with its source map', () => {
    for (const name of ['ingest', 'deliver']) {
      const files = [...unzip(read(`${name}.zip`)).keys()].sort()
      expect(files).toEqual([`functions/${name}.mjs`, `functions/${name}.mjs.map`])
      const handler =
        template.Resources[`${name[0]?.toUpperCase()}${name.slice(1)}LambdaFunction`]?.Properties.Handler
      expect(handler).toBe(`functions/${name}.handler`)
    }
  })
})

describe('stage options', () => {
  it('refuses an unknown ingestAuth mode before anything is built', () => {
    let output = ''
    try {
      pack(['--param=ingestAuth=none'])
    } catch (error) {
      const { stdout, stderr } = error as { stdout: string; stderr: string }
      output = `${stdout}${stderr}`
    }
    expect(output).toMatch(/Cannot resolve variable at "custom\.ingestAuth"/)
  })
})
