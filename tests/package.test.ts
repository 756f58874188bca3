import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { GetParameterCommand, GetParametersCommand } from '@aws-sdk/client-ssm'
import { beforeAll, describe, expect, it } from 'vitest'
import { AUDIENCE_SYNC_INSTANCES } from '../lib/audiences/list-sync.ts'
import { MEMBERSHIP_TABLE_KEYS, MEMBERSHIP_TTL_ATTRIBUTE } from '../lib/audiences/membership-ledger.ts'
import { checkDeployParams } from '../lib/cli/deploy-params.ts'
import {
  checkParameters,
  configurationProblems,
  INGEST_AUTH_MODES,
  type PreflightDeps,
  preflight,
  printOptions,
  type ResolvedService,
  requiredSecretParameters,
  resolveWithOsls,
  type Ssm,
  stageParams,
} from '../lib/cli/preflight.ts'
import { SQS_MAX_BATCH_BYTES } from '../lib/config.ts'
import { DELETED_PEOPLE } from '../lib/deletion-marks.ts'
import { LEARNT_RATES_KEY } from '../lib/deliver/learnt-rates.ts'
import { FIFO_ATTRIBUTES, QUEUE_SETTINGS } from '../lib/queue/settings.ts'
import { METRIC_UNITS } from '../lib/telemetry.ts'
import {
  cfnLint,
  cfnLintCommand,
  osls,
  packageOnce,
  packageVariants,
  readPackaged as read,
  readTemplate,
  SENTINELS,
  type TemplateVariant,
  unzip,
} from './support/template.ts'

/**
 * Builds the real deployment offline (`osls package`, no AWS credentials) and checks the
 * CloudFormation template and the function zips: what would reach AWS is what is tested.
 * The deploy preflight is tested against the same serverless.yml, with SSM stubbed.
 */

type Resource = { Type: string; Properties: Record<string, unknown>; Condition?: string }
type Template = {
  Conditions: Record<string, unknown>
  Resources: Record<string, Resource>
  Outputs: Record<string, unknown>
  Parameters: Record<string, { Type: string; Default: string }>
}
type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown }

let template: Template
let templateText: string
/** `osls print` of a prod stage authenticating with a token, as the preflight reads it. */
let tokenStage: ResolvedService

const resourcesOf = (type: string) => Object.entries(template.Resources).filter(([, r]) => r.Type === type)
const statementsOf = (role: string): Statement[] =>
  (template.Resources[role]!.Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[]).flatMap(
    (policy) => policy.PolicyDocument.Statement,
  )
const actions = (statement: Statement) => [statement.Action].flat()
const refs = (value: unknown) => JSON.stringify(value)

beforeAll(async () => {
  // Both only read serverless.yml; print writes nothing, so they can run side by side.
  const [, resolved] = await Promise.all([
    packageOnce(),
    resolveWithOsls(['--stage', 'prod', '--param=ingestAuth=token']),
  ])
  tokenStage = resolved
  templateText = read('cloudformation-template-update-stack.json').toString('utf8')
  template = JSON.parse(templateText) as Template
}, 180_000)

/**
 * A template's value as CloudFormation would create it: Fn::If and Fn::Equals over constants
 * (what osls leaves of the stage parameters) evaluated, AWS::NoValue properties dropped.
 */
const NO_VALUE = Symbol('AWS::NoValue')
const evaluate = (t: Template, value: unknown): unknown => {
  if (Array.isArray(value)) return value.map((v) => evaluate(t, v)).filter((v) => v !== NO_VALUE)
  if (value === null || typeof value !== 'object') return value
  const object = value as Record<string, unknown>
  if (object.Ref === 'AWS::NoValue') return NO_VALUE
  if ('Fn::If' in object) {
    const [condition, yes, no] = object['Fn::If'] as [string, unknown, unknown]
    return evaluate(t, evaluate(t, t.Conditions[condition]) === true ? yes : no)
  }
  if ('Fn::Equals' in object) {
    const [a, b] = (object['Fn::Equals'] as unknown[]).map((v) => evaluate(t, v))
    return a === b
  }
  if ('Fn::Not' in object) return !(evaluate(t, (object['Fn::Not'] as unknown[])[0]) as boolean)
  return Object.fromEntries(
    Object.entries(object)
      .map(([k, v]) => [k, evaluate(t, v)] as const)
      .filter(([, v]) => v !== NO_VALUE),
  )
}
const propertiesOf = (t: Template, name: string) =>
  evaluate(t, t.Resources[name]?.Properties) as Record<string, unknown>

describe('the packaged CloudFormation template', () => {
  it('makes both queues FIFO in high-throughput mode by default, and maps deliver without a batching window', () => {
    const queue = propertiesOf(template, 'EventsQueue')
    const dlq = propertiesOf(template, 'DeadLetterQueue')
    const mapping = propertiesOf(template, 'DeliverEventSourceMappingSQSEventsQueue')

    expect(queue.QueueName).toBe('segment-courier-relay-dev-events.fifo')
    expect(dlq.QueueName).toBe('segment-courier-relay-dev-dlq.fifo')
    for (const props of [queue, dlq]) {
      expect({
        FifoQueue: String(props.FifoQueue),
        ContentBasedDeduplication: String(props.ContentBasedDeduplication),
        DeduplicationScope: props.DeduplicationScope,
        FifoThroughputLimit: props.FifoThroughputLimit,
      }).toEqual(FIFO_ATTRIBUTES)
    }
    expect(mapping.BatchSize).toBeLessThanOrEqual(10)
    expect(mapping).not.toHaveProperty('MaximumBatchingWindowInSeconds')
  })

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
      // The relay's message budget (SQS_BATCH_MAX_BYTES) assumes SQS's 1 MiB.
      expect(props.MaximumMessageSize).toBe(SQS_MAX_BATCH_BYTES)
    }
  })

  it('keeps every queue, with its backlog or its dead letters, when the stack is removed or a change replaces it', () => {
    for (const queue of resourcesOf('AWS::SQS::Queue')) {
      expect(queue[1], queue[0]).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' })
    }
    expect(resourcesOf('AWS::SQS::Queue').map(([id]) => id)).toEqual(
      expect.arrayContaining(['EventsQueue', 'DeadLetterQueue']),
    )
  })

  it('lets the API invoke ingest for POST /segment only', () => {
    const permissions = resourcesOf('AWS::Lambda::Permission').filter(
      ([, p]) => p.Properties.Principal === 'apigateway.amazonaws.com',
    )
    expect(permissions).toHaveLength(1)
    const [[, permission]] = permissions as [[string, Resource]]
    const sourceArn = (permission.Properties.SourceArn as { 'Fn::Sub': string })['Fn::Sub']
    // api-id/stage/METHOD/path: any stage, the one route.
    expect(sourceArn.split(':execute-api:')[1]?.split(':').at(-1)).toBe('$' + '{HttpApi}/*/POST/segment')
  })

  it('lets each role decrypt only its own SSM parameters, only through SSM', () => {
    for (const role of ['IngestRole', 'DeliverRole']) {
      const kms = statementsOf(role).filter((s) => actions(s).includes('kms:Decrypt'))
      expect(kms, role).toHaveLength(1)
      const condition = (kms[0] as Statement & { Condition: { StringEquals: Record<string, unknown> } })
        .Condition
      expect(Object.keys(condition.StringEquals).sort()).toEqual([
        'kms:EncryptionContext:PARAMETER_ARN',
        'kms:ViaService',
      ])
      const arns = refs(condition.StringEquals['kms:EncryptionContext:PARAMETER_ARN'])
      const granted = refs(
        statementsOf(role)
          .filter((s) => actions(s).includes('ssm:GetParameter'))
          .map((s) => s.Resource),
      )
      for (const name of [
        'CourierTokenParameterName',
        'SharedSecretParameterName',
        'IngestTokenParameterName',
      ]) {
        expect(arns.includes(name), `${role} ${name}`).toBe(granted.includes(name))
      }
    }
  })

  it('gives the queue a visibility timeout of at least 6 × the deliver timeout', () => {
    const deliver = template.Resources.DeliverLambdaFunction?.Properties as { Timeout: number }
    const queue = template.Resources.EventsQueue?.Properties as { VisibilityTimeout: number }
    expect(queue.VisibilityTimeout).toBeGreaterThanOrEqual(6 * deliver.Timeout)
  })

  it('maps the queue to deliver with ReportBatchItemFailures and a maximum concurrency, reserving no concurrency by default', () => {
    const [, mapping] = resourcesOf('AWS::Lambda::EventSourceMapping').find(([, r]) =>
      refs(r.Properties.EventSourceArn).includes('EventsQueue'),
    ) as [string, Resource]
    const deliver = template.Resources.DeliverLambdaFunction?.Properties as Record<string, unknown>

    expect(mapping.Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures'])
    expect(mapping.Properties.EventSourceArn).toEqual({ 'Fn::GetAtt': ['EventsQueue', 'Arn'] })
    const maximum = (mapping.Properties.ScalingConfig as { MaximumConcurrency: number }).MaximumConcurrency
    expect(maximum).toBeGreaterThanOrEqual(2)
    // An account with a low concurrency quota refuses any reservation: none unless asked for.
    for (const fn of ['IngestLambdaFunction', 'DeliverLambdaFunction', 'AudiencesLambdaFunction']) {
      expect(template.Resources[fn]?.Properties, fn).not.toHaveProperty('ReservedConcurrentExecutions')
    }
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
      for (const resource of resources)
        expect(resource).toMatch(/"(EventsQueue|DeadLetterQueue|AudienceQueue)","Arn"/)
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

  it('drains the audience queue into the list sync in big batches, two instances at most, with a role of its own', () => {
    const [, mapping] = resourcesOf('AWS::Lambda::EventSourceMapping').find(([, r]) =>
      refs(r.Properties.EventSourceArn).includes('AudienceQueue'),
    ) as [string, Resource]
    const sync = template.Resources.AudiencesLambdaFunction?.Properties as Record<string, unknown>
    const queue = template.Resources.AudienceQueue?.Properties as Record<string, unknown>

    expect(mapping.Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures'])
    expect(mapping.Properties.BatchSize).toBe(1_000)
    expect(mapping.Properties.MaximumBatchingWindowInSeconds).toBe(20)
    // Courier's list budget is split over AUDIENCE_SYNC_INSTANCES; the deploy must match it.
    expect((mapping.Properties.ScalingConfig as { MaximumConcurrency: number }).MaximumConcurrency).toBe(
      AUDIENCE_SYNC_INSTANCES,
    )
    // 6 × the timeout + the batching window, as for the events queue: 6 × 300 + 20.
    expect(sync.Timeout).toBe(300)
    expect(queue.VisibilityTimeout).toBe(6 * 300 + 20)
    expect(queue.MaximumMessageSize).toBe(SQS_MAX_BATCH_BYTES)
    // A standard queue redrives only to a standard DLQ: next to the FIFO DLQ (the default) it has its own.
    expect(propertiesOf(template, 'AudienceQueue').RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': ['AudienceDeadLetterQueue', 'Arn'] },
      maxReceiveCount: QUEUE_SETTINGS.maxReceiveCount,
    })
    expect(propertiesOf(template, 'AudienceDeadLetterQueue')).not.toHaveProperty('FifoQueue')
    expect(sync.Role).toEqual({ 'Fn::GetAtt': ['AudienceRole', 'Arn'] })
    const send = statementsOf('AudienceRole').filter((s) => actions(s).includes('sqs:SendMessage'))
    expect(refs(send.map((s) => s.Resource))).not.toMatch(/EventsQueue|AudienceQueue/)
    const deliverSends = statementsOf('DeliverRole').filter((s) => actions(s).includes('sqs:SendMessage'))
    expect(refs(deliverSends.map((s) => s.Resource))).toContain('AudienceQueue')
  })

  it('gives the list sync its membership ledger: the table the code and npm start use; deliver reaches only the deletion marks and the learnt rates in it', () => {
    const table = propertiesOf(template, 'MembershipTable')
    const sync = template.Resources.AudiencesLambdaFunction?.Properties as {
      Environment: { Variables: Record<string, unknown> }
    }

    // The keys the ledger reads and writes, and the TTL it sets (lib/audiences/membership-ledger.ts).
    expect(table.KeySchema).toEqual(MEMBERSHIP_TABLE_KEYS.KeySchema)
    expect(table.AttributeDefinitions).toEqual(MEMBERSHIP_TABLE_KEYS.AttributeDefinitions)
    expect(table.TimeToLiveSpecification).toEqual({ AttributeName: MEMBERSHIP_TTL_ATTRIBUTE, Enabled: true })
    expect(table.BillingMode).toBe('PAY_PER_REQUEST')
    expect(sync.Environment.Variables.AUDIENCE_TABLE_NAME).toEqual({ Ref: 'MembershipTable' })
    const dynamodb = statementsOf('AudienceRole').filter((s) =>
      actions(s).some((a) => a.startsWith('dynamodb:')),
    )
    expect(dynamodb.flatMap(actions).sort()).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:DeleteItem',
      'dynamodb:UpdateItem',
    ])
    expect(dynamodb.map((s) => s.Resource)).toEqual([{ 'Fn::GetAtt': ['MembershipTable', 'Arn'] }])
    expect(refs(statementsOf('IngestRole'))).not.toContain('dynamodb:')
    // deliver: the deletion marks (lib/deletion-marks.ts) and the fleet's learnt rates
    // (lib/deliver/learnt-rates.ts) on the same table, and only their partitions
    const deliverEnv = template.Resources.DeliverLambdaFunction?.Properties as {
      Environment: { Variables: Record<string, unknown> }
    }
    expect(deliverEnv.Environment.Variables.AUDIENCE_TABLE_NAME).toEqual({ Ref: 'MembershipTable' })
    const deliverDynamodb = statementsOf('DeliverRole').filter((s) =>
      actions(s).some((a) => a.startsWith('dynamodb:')),
    )
    expect(deliverDynamodb.flatMap(actions).sort()).toEqual(['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'])
    expect(deliverDynamodb.map((s) => s.Resource)).toEqual([{ 'Fn::GetAtt': ['MembershipTable', 'Arn'] }])
    expect(deliverDynamodb.map((s) => s.Condition)).toEqual([
      { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [DELETED_PEOPLE, LEARNT_RATES_KEY] } },
    ])
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

  it('gives ingest only the credentials of its ingestAuth mode, as variables and as SSM grants', () => {
    const env = (
      template.Resources.IngestLambdaFunction!.Properties.Environment as {
        Variables: Record<string, unknown>
      }
    ).Variables
    // Left out (AWS::NoValue), not set empty, when the mode does not use it.
    expect(env.SEGMENT_SHARED_SECRET_PARAMETER).toEqual({
      'Fn::If': ['UseSignature', { Ref: 'SharedSecretParameterName' }, { Ref: 'AWS::NoValue' }],
    })
    expect(env.INGEST_TOKEN_PARAMETER).toEqual({
      'Fn::If': ['UseToken', { Ref: 'IngestTokenParameterName' }, { Ref: 'AWS::NoValue' }],
    })
    const ssm = statementsOf('IngestRole').filter((s) => actions(s).includes('ssm:GetParameter'))
    expect(ssm).toHaveLength(1)
    const grants = [ssm[0]!.Resource].flat() as { 'Fn::If': [string, unknown, unknown] }[]
    expect(grants.map((grant) => [grant['Fn::If'][0], grant['Fn::If'][2]])).toEqual([
      ['UseSignature', { Ref: 'AWS::NoValue' }],
      ['UseToken', { Ref: 'AWS::NoValue' }],
      ['RotateSharedSecret', { Ref: 'AWS::NoValue' }],
      ['RotateIngestToken', { Ref: 'AWS::NoValue' }],
    ])
    // The default mode is signature: the token parameter is a plain name CloudFormation does not look up.
    expect(template.Parameters.IngestTokenParameterName?.Type).toBe('String')
    const deliverSsm = statementsOf('DeliverRole').filter((s) => actions(s).includes('ssm:GetParameter'))
    expect(refs(deliverSsm.map((s) => s.Resource))).toContain('CourierTokenParameterName')
    expect(refs(deliverSsm.map((s) => s.Resource))).not.toMatch(/SharedSecret|IngestToken/)
  })

  it('wires a rotation: the previous secret and token only when named and their mode is in use', () => {
    const env = (
      template.Resources.IngestLambdaFunction!.Properties.Environment as {
        Variables: Record<string, unknown>
      }
    ).Variables
    const conditions = (template as unknown as { Conditions: Record<string, unknown> }).Conditions

    expect(env.SEGMENT_SHARED_SECRET_PREVIOUS_PARAMETER).toEqual({
      'Fn::If': ['RotateSharedSecret', { Ref: 'SharedSecretPreviousParameterName' }, { Ref: 'AWS::NoValue' }],
    })
    expect(env.INGEST_TOKEN_PREVIOUS_PARAMETER).toEqual({
      'Fn::If': ['RotateIngestToken', { Ref: 'IngestTokenPreviousParameterName' }, { Ref: 'AWS::NoValue' }],
    })
    expect(conditions.RotateSharedSecret).toEqual({
      'Fn::And': [
        { Condition: 'UseSignature' },
        { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'SharedSecretPreviousParameterName' }, ''] }] },
      ],
    })
    // No rotation by default: empty names, which preflight does not ask SSM about.
    expect(template.Parameters.SharedSecretPreviousParameterName).toEqual({ Type: 'String', Default: '' })
    expect(template.Parameters.IngestTokenPreviousParameterName).toEqual({ Type: 'String', Default: '' })
    expect(requiredSecretParameters({ resources: { Parameters: template.Parameters } })).not.toContain('')
  })

  it('has preflight check that a named previous parameter exists', () => {
    const service: ResolvedService = {
      resources: {
        Parameters: {
          ...template.Parameters,
          SharedSecretPreviousParameterName: { Type: 'String', Default: '/segment-courier-relay/prod/old' },
        },
      },
    }

    expect(requiredSecretParameters(service)).toContain('/segment-courier-relay/prod/old')
  })

  it('has the alarms and a dashboard naming every relay metric', () => {
    const alarms = Object.fromEntries(resourcesOf('AWS::CloudWatch::Alarm'))
    const watched = (id: string) => [
      alarms[id]?.Properties.MetricName,
      refs(alarms[id]?.Properties.Dimensions),
    ]
    expect(Object.keys(alarms).sort()).toEqual([
      'AudienceDeadLetterAlarm',
      'DeadLetterAgeAlarm',
      'DeadLetterAlarm',
      'DeliverErrorsAlarm',
      'DeliveryFailingAlarm',
      'OldestEventAlarm',
    ])
    expect(watched('DeadLetterAlarm')).toEqual([
      'ApproximateNumberOfMessagesVisible',
      expect.stringContaining('DeadLetterQueue'),
    ])
    expect(watched('AudienceDeadLetterAlarm')).toEqual([
      'ApproximateNumberOfMessagesVisible',
      expect.stringContaining('AudienceDeadLetterQueue'),
    ])
    // The oldest dead letter nears the DLQ's 14-day retention: redrive or inspect before it is gone.
    expect(watched('DeadLetterAgeAlarm')).toEqual([
      'ApproximateAgeOfOldestMessage',
      expect.stringContaining('DeadLetterQueue'),
    ])
    expect(alarms.DeadLetterAgeAlarm?.Properties.Threshold).toBe(7 * 86_400)
    expect(watched('OldestEventAlarm')).toEqual([
      'ApproximateAgeOfOldestMessage',
      expect.stringContaining('EventsQueue'),
    ])
    expect(watched('DeliverErrorsAlarm')).toEqual([
      'Errors',
      expect.stringContaining('DeliverLambdaFunction'),
    ])
    // An outage shows as events received but not deleted: the age metric leaves retried messages out.
    const failing = refs(alarms.DeliveryFailingAlarm?.Properties.Metrics)
    expect(failing).toContain('NumberOfMessagesReceived')
    expect(failing).toContain('NumberOfMessagesDeleted')
    expect(failing).toContain('EventsQueue')
    for (const alarm of Object.values(alarms)) {
      expect(alarm.Properties.AlarmActions).toEqual({
        'Fn::If': ['HasAlarmEmail', [{ Ref: 'AlarmTopic' }], { Ref: 'AWS::NoValue' }],
      })
    }
    const [[, dashboard]] = resourcesOf('AWS::CloudWatch::Dashboard') as [[string, Resource]]
    const body = refs(dashboard.Properties.DashboardBody)
    for (const metric of Object.keys(METRIC_UNITS)) expect(body).toContain(`\\"${metric}\\"`)
    for (const metric of ['ApproximateNumberOfMessagesVisible', 'ApproximateAgeOfOldestMessage']) {
      expect(body).toContain(metric)
    }
    // CloudFormation refuses a body that is not JSON once its ${…} are substituted.
    const [text] = (dashboard.Properties.DashboardBody as { 'Fn::Sub': [string, unknown] })['Fn::Sub']
    const widgets = (JSON.parse(text.replaceAll(/\$\{[^}]+\}/g, 'x')) as { widgets: unknown[] }).widgets
    expect(widgets.length).toBeGreaterThanOrEqual(4)

    // Stages of one account must not mix: every relay metric row names this stage's dimension.
    const [, values] = (
      dashboard.Properties.DashboardBody as { 'Fn::Sub': [string, Record<string, unknown>] }
    )['Fn::Sub']
    expect(values.Stage).toBe('dev')
    const rows = [...text.matchAll(/\["SegmentCourierRelay","(\w+)",[^\]]*\]/g)].map((match) => match[0])
    expect(rows).toHaveLength(4)
    const stageDimension = ['"service","segment-courier-relay","stage","$', '{Stage}"'].join('')
    for (const row of rows) expect(row).toContain(stageDimension)
    for (const fn of ['IngestLambdaFunction', 'DeliverLambdaFunction']) {
      const environment = template.Resources[fn]!.Properties.Environment as {
        Variables: Record<string, unknown>
      }
      expect(environment.Variables.RELAY_STAGE).toBe('dev')
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
      // keepNames: errors are named after their class (ConfigError), even minified.
      expect(
        unzip(read(`${name}.zip`))
          .get(`functions/${name}.mjs`)
          ?.toString('utf8'),
      ).toContain('"ConfigError"')
      const handler =
        template.Resources[`${name[0]?.toUpperCase()}${name.slice(1)}LambdaFunction`]?.Properties.Handler
      expect(handler).toBe(`functions/${name}.handler`)
    }
  })
})

describe('stage options', () => {
  it('keeps queueType=standard: standard queues, the batching window, nothing FIFO', async () => {
    const dir = `${tmpdir()}/scr-standard-${process.pid}`
    await osls(['package', '--param=queueType=standard', '--package', dir])
    const standard = JSON.parse(
      readFileSync(`${dir}/cloudformation-template-update-stack.json`, 'utf8'),
    ) as Template

    const queue = propertiesOf(standard, 'EventsQueue')
    const dlq = propertiesOf(standard, 'DeadLetterQueue')
    const mapping = propertiesOf(standard, 'DeliverEventSourceMappingSQSEventsQueue')

    expect(queue.QueueName).toBe('segment-courier-relay-dev-events')
    expect(dlq.QueueName).toBe('segment-courier-relay-dev-dlq')
    for (const props of [queue, dlq]) {
      for (const name of Object.keys(FIFO_ATTRIBUTES)) expect(props).not.toHaveProperty(name)
    }
    expect(queue.RedrivePolicy).toEqual(propertiesOf(template, 'EventsQueue').RedrivePolicy)
    expect(mapping.MaximumBatchingWindowInSeconds).toBe(1)
    expect(propertiesOf(standard, 'AudienceQueue').RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] },
      maxReceiveCount: QUEUE_SETTINGS.maxReceiveCount,
    })
    expect(standard.Resources.AudienceDeadLetterQueue?.Condition).toBe('IsFifo')
    expect(evaluate(standard, standard.Conditions.IsFifo)).toBe(false)
  }, 120_000)

  it('refuses an unknown queueType before anything is built', async () => {
    const error = await osls(['package', '--param=queueType=ordered', '--package', `${tmpdir()}/scr-x`]).then(
      () => undefined,
      (failure: { stdout: string; stderr: string }) => failure,
    )
    expect(`${error?.stdout}${error?.stderr}`).toMatch(/Cannot resolve variable at "custom\.queueType"/)
  })

  it('refuses parameters AWS would refuse, one line per mistake, before anything is built', async () => {
    // Prepare: values AWS refuses at deploy time (or, for the deliver timeout, the relay cannot use)
    const wrong = [
      'queueType=standard',
      'ingestAuth=none',
      'deliverMaxConcurrency=1',
      'deliverBatchSize=50',
      'deliverBatchingWindowSeconds=0',
      'deliverTimeoutSeconds=1000',
      'logRetentionDays=31',
      'httpApiRateLimit=0',
      'ingestReservedConcurrency=some',
    ]

    // Act: print resolves every variable as package and deploy do, offline
    const error = await osls(['print', ...wrong.map((w) => `--param=${w}`)]).then(
      () => undefined,
      (failure: { stdout: string; stderr: string }) => failure,
    )

    // Assess
    const output = `${error?.stdout}${error?.stderr}`
    expect(output).toContain('the deploy parameters are refused')
    for (const line of [
      '- ingestAuth "none": must be one of signature, token, both (how ingest authenticates Segment)',
      '- deliverMaxConcurrency "1": must be a whole number from 2 to 1000',
      '- deliverBatchingWindowSeconds "0": must be at least 1 when deliverBatchSize is above 10 (it is 50)',
      '- deliverTimeoutSeconds "1000": must be a whole number from 30 to 900',
      '- logRetentionDays "31": must be one of CloudWatch Logs\' periods',
      '- httpApiRateLimit "0": must be a whole number from 1 to 10000',
      '- ingestReservedConcurrency "some": must be a whole number from 1 to 10000',
    ]) {
      expect(output).toContain(line)
    }
    expect(output).not.toMatch(/^\s+at /m)
  })
})

describe('deploy parameter rules', () => {
  const DEFAULTS = {
    ingestAuth: 'signature',
    deliverMaxConcurrency: 5,
    deliverBatchSize: 10,
    deliverBatchingWindowSeconds: 1,
    deliverTimeoutSeconds: 60,
    deliverMemoryMb: 256,
    ingestMemoryMb: 256,
    ingestReservedConcurrency: '',
    deliverReservedConcurrency: '',
    audiencesReservedConcurrency: '',
    audiencesTimeoutSeconds: 300,
    audiencesBatchingWindowSeconds: 20,
    httpApiRateLimit: 1000,
    httpApiBurstLimit: 2000,
    logRetentionDays: 30,
    oldestMessageAlarmSeconds: 900,
    deadLetterAgeAlarmSeconds: 604_800,
    alarmEmail: '',
  }

  it('takes the defaults and derives the visibility timeout, throttling and reserved concurrency', () => {
    expect(checkDeployParams(DEFAULTS)).toEqual({
      problems: [],
      derived: {
        eventsVisibilityTimeout: 361,
        audiencesVisibilityTimeout: 1_820,
        deliverEventSourceProperties: { MaximumBatchingWindowInSeconds: 1 },
        ingestFunctionProperties: {},
        deliverFunctionProperties: {},
        audiencesFunctionProperties: {},
        httpApiStageProperties: {
          DefaultRouteSettings: {
            DetailedMetricsEnabled: false,
            ThrottlingBurstLimit: 2000,
            ThrottlingRateLimit: 1000,
          },
        },
      },
    })
    const varied = checkDeployParams({
      ...DEFAULTS,
      deliverTimeoutSeconds: 900,
      deliverBatchingWindowSeconds: 300,
      ingestReservedConcurrency: 20,
    })
    expect(varied.derived.eventsVisibilityTimeout).toBe(5_700)
    expect(varied.derived.ingestFunctionProperties).toEqual({ ReservedConcurrentExecutions: 20 })
  })

  it.each([
    { timeout: 300, window: 20, visibility: 1_820 },
    { timeout: 60, window: 1, visibility: 361 },
    { timeout: 900, window: 300, visibility: 5_700 },
    { timeout: 120, window: 5, visibility: 725 },
  ])(
    'derives the audience queue visibility from the list sync: 6 × $timeout s + $window s = $visibility s',
    ({ timeout, window, visibility }) => {
      const { problems, derived } = checkDeployParams({
        ...DEFAULTS,
        audiencesTimeoutSeconds: timeout,
        audiencesBatchingWindowSeconds: window,
      })

      expect(problems).toEqual([])
      expect(derived.audiencesVisibilityTimeout).toBe(visibility)
    },
  )

  it('refuses an audience timeout or window outside what the list sync and its event source take', () => {
    const { problems } = checkDeployParams({
      ...DEFAULTS,
      audiencesTimeoutSeconds: 901,
      audiencesBatchingWindowSeconds: 0,
    })

    expect(problems).toEqual([
      expect.stringMatching(/^audiencesTimeoutSeconds "901": must be a whole number from 60 to 900/),
      expect.stringMatching(/^audiencesBatchingWindowSeconds "0": must be a whole number from 1 to 300/),
    ])
  })

  it('reserves concurrency only when asked, and never below the event source maximum it must carry', () => {
    const opted = checkDeployParams({
      ...DEFAULTS,
      deliverReservedConcurrency: 8,
      audiencesReservedConcurrency: 2,
    })
    const tooFew = checkDeployParams({
      ...DEFAULTS,
      deliverReservedConcurrency: 4,
      audiencesReservedConcurrency: 1,
    })

    expect(opted.problems).toEqual([])
    expect(opted.derived.deliverFunctionProperties).toEqual({ ReservedConcurrentExecutions: 8 })
    expect(opted.derived.audiencesFunctionProperties).toEqual({ ReservedConcurrentExecutions: 2 })
    expect(opted.derived.ingestFunctionProperties).toEqual({})
    expect(tooFew.problems).toEqual([
      'deliverReservedConcurrency "4": must be a whole number from 5 to 10000 (empty for none, else at least deliverMaxConcurrency (5))',
      'audiencesReservedConcurrency "1": must be a whole number from 2 to 10000 (empty for none, else at least the list sync\'s maximum concurrency (2))',
    ])
  })

  it('holds a FIFO event source to FIFO rules: batches of at most 10, no batching window', () => {
    const fifo = { ...DEFAULTS, queueType: 'fifo' }
    expect(checkDeployParams(fifo).problems).toEqual([])
    // The template leaves the window out of a FIFO event source, so it counts for nothing there.
    expect(checkDeployParams(fifo).derived.eventsVisibilityTimeout).toBe(6 * 60)
    expect(checkDeployParams(fifo).derived.deliverEventSourceProperties).toEqual({
      MaximumBatchingWindowInSeconds: null,
    })
    expect(checkDeployParams({ ...fifo, deliverBatchSize: 11 }).problems).toEqual([
      expect.stringMatching(
        /^deliverBatchSize "11": must be a whole number from 1 to 10 \(records per batch on a fifo queue\)/,
      ),
    ])
    expect(checkDeployParams({ ...DEFAULTS, queueType: 'ring' }).problems).toContainEqual(
      expect.stringMatching(/^queueType "ring": must be one of fifo, standard/),
    )
  })
})

/** Packaged with parameters other than the defaults: the template must follow them and lint clean. */
const VARIED_PARAMS = {
  queueType: 'standard',
  deliverTimeoutSeconds: '600',
  // At most 10: cfn-lint checks the event source against both branches of the template's
  // IsFifo condition (constant, but it explores it), so a batch above 10 reads to it as a FIFO
  // error (E3705). The deploy parameter check allows it on standard queues, as AWS does.
  deliverBatchSize: '10',
  deliverBatchingWindowSeconds: '5',
  ingestAuth: 'both',
  ingestReservedConcurrency: '50',
  deliverReservedConcurrency: '5',
  audiencesReservedConcurrency: '2',
  audiencesTimeoutSeconds: '120',
  audiencesBatchingWindowSeconds: '5',
  httpApiRateLimit: '50',
  httpApiBurstLimit: '100',
  alarmEmail: 'ops@example.com',
} as const
const VARIANTS = [
  { name: 'varied', params: VARIED_PARAMS },
  // The same two templates from Serverless Framework v3 (the last open-source release), compared
  // below with osls's.
  { name: 'default-sls3', params: {}, framework: 'serverless@3' },
  { name: 'varied-sls3', params: { ...VARIED_PARAMS }, framework: 'serverless@3' },
] as const satisfies readonly TemplateVariant[]

describe('the template follows its parameters', () => {
  let variants: Map<string, Template>
  let paths: Map<string, string>
  beforeAll(async () => {
    paths = await packageVariants(VARIANTS)
    variants = new Map([...paths].map(([name, path]) => [name, readTemplate(path) as Template]))
  }, 180_000)
  const variant = (name: string) => variants.get(name) as Template

  it('derives the queue visibility timeout from the deliver timeout and batching window (≥ 6 × timeout + window)', () => {
    const slow = variant('varied')
    expect(slow.Resources.DeliverLambdaFunction?.Properties.Timeout).toBe(600)
    expect(slow.Resources.EventsQueue?.Properties.VisibilityTimeout).toBe(6 * 600 + 5)
    // The default queue is FIFO: no batching window.
    expect(template.Resources.EventsQueue?.Properties.VisibilityTimeout).toBe(6 * 60)
    const [[, mapping]] = Object.entries(slow.Resources).filter(
      ([, r]) =>
        r.Type === 'AWS::Lambda::EventSourceMapping' &&
        refs(r.Properties.EventSourceArn).includes('EventsQueue'),
    ) as [[string, Resource]]
    expect(mapping.Properties).toMatchObject({ BatchSize: 10, MaximumBatchingWindowInSeconds: 5 })
  })

  it('throttles the front door and reserves ingest instances as asked, and leaves ingest unreserved by default', () => {
    const guarded = variant('varied')
    expect(guarded.Resources.HttpApiStage?.Properties.DefaultRouteSettings).toEqual({
      DetailedMetricsEnabled: false,
      ThrottlingBurstLimit: 100,
      ThrottlingRateLimit: 50,
    })
    expect(guarded.Resources.IngestLambdaFunction?.Properties.ReservedConcurrentExecutions).toBe(50)
    expect(template.Resources.IngestLambdaFunction?.Properties).not.toHaveProperty(
      'ReservedConcurrentExecutions',
    )
    expect(template.Resources.HttpApiStage?.Properties.DefaultRouteSettings).toEqual({
      DetailedMetricsEnabled: false,
      ThrottlingBurstLimit: 2000,
      ThrottlingRateLimit: 1000,
    })
  })

  it('reserves concurrency for each function only when its parameter is set, and derives the audience queue visibility', () => {
    const reserved = variant('varied')
    const sync = reserved.Resources.AudiencesLambdaFunction?.Properties as Record<string, unknown>
    const [, mapping] = Object.entries(reserved.Resources).find(
      ([, r]) =>
        r.Type === 'AWS::Lambda::EventSourceMapping' &&
        refs(r.Properties.EventSourceArn).includes('AudienceQueue'),
    ) as [string, Resource]

    expect(
      ['IngestLambdaFunction', 'DeliverLambdaFunction', 'AudiencesLambdaFunction'].map(
        (fn) => reserved.Resources[fn]?.Properties.ReservedConcurrentExecutions,
      ),
    ).toEqual([50, 5, 2])
    expect(sync.Timeout).toBe(120)
    expect(mapping.Properties.MaximumBatchingWindowInSeconds).toBe(5)
    expect(reserved.Resources.AudienceQueue?.Properties.VisibilityTimeout).toBe(6 * 120 + 5)
  })

  /**
   * Everything that decides what runs and who may do what, by resource: the functions (their
   * code's S3 key aside, which names the packaging time), queues, event sources, alarms, roles,
   * and the parameters, conditions and outputs they use.
   */
  const MATTERS = [
    'AWS::Lambda::Function',
    'AWS::SQS::Queue',
    'AWS::Lambda::EventSourceMapping',
    'AWS::CloudWatch::Alarm',
    'AWS::IAM::Role',
    'AWS::Lambda::Permission',
    'AWS::ApiGatewayV2::Route',
    'AWS::ApiGatewayV2::Stage',
    'AWS::DynamoDB::Table',
  ]
  const whatMatters = (t: Template) => {
    const resources = Object.fromEntries(
      Object.entries(t.Resources)
        .filter(([, r]) => MATTERS.includes(r.Type))
        .map(([id, r]) => {
          const { Code: _code, ...properties } = r.Properties
          return [id, { ...r, Properties: properties }]
        }),
    )
    return { resources, parameters: t.Parameters, conditions: t.Conditions, outputs: t.Outputs }
  }

  it.each([
    ['default', () => template],
    ['varied', () => variant('varied')],
  ])('builds the same %s template with Serverless Framework v3 as with osls', async (name, osls) => {
    const v3 = variant(`${name}-sls3`)

    const [expected, got] = [whatMatters(osls()), whatMatters(v3)]

    expect(Object.keys(got.resources).length).toBeGreaterThanOrEqual(15)
    for (const type of MATTERS) {
      expect(
        Object.values(got.resources).some((r) => r.Type === type),
        type,
      ).toBe(true)
    }
    expect(Object.keys(got.resources).sort()).toEqual(Object.keys(expected.resources).sort())
    for (const id of Object.keys(expected.resources))
      expect(got.resources[id], id).toEqual(expected.resources[id])
    expect(got.parameters).toEqual(expected.parameters)
    expect(got.conditions).toEqual(expected.conditions)
    expect(got.outputs).toEqual(expected.outputs)
  })

  const lint = cfnLintCommand()
  it.skipIf(lint === undefined)(
    `has no cfn-lint errors, for the default parameters and every variant, from either framework${lint === undefined ? ' (SKIPPED: cfn-lint is not installed; pip install cfn-lint)' : ''}`,
    async () => {
      // The default package's directory is gone by now (osls cleans .serverless when it packages
      // elsewhere): its template, read at the start, is linted from a copy.
      const defaults = join(dirname(paths.get('varied') as string), '..', 'default.json')
      writeFileSync(defaults, templateText)
      // queueType=standard, packaged by the test above.
      const standard = `${tmpdir()}/scr-standard-${process.pid}/cloudformation-template-update-stack.json`
      const templates = [defaults, ...paths.values(), standard]

      const findings = await cfnLint(lint as string, templates)

      const errors = findings
        .filter((f) => f.Level === 'Error')
        .map((f) => `${f.Filename}: ${f.Rule.Id} ${f.Message} at ${(f.Location.Path ?? []).join('/')}`)
      expect(errors).toEqual([])
    },
    60_000,
  )
})

/**
 * An SSM stub answering GetParameters from `existing` (name → type), recording the requests, and
 * GetParameter (the Courier token, tried on Courier) with a value.
 */
const ssmStub = (existing: Record<string, string>) => {
  const requests: { Names?: string[]; WithDecryption?: boolean }[] = []
  const ssm: Ssm = {
    send: (async (command: GetParametersCommand | GetParameterCommand) => {
      if (command instanceof GetParameterCommand) {
        const name = command.input.Name ?? ''
        if (!(name in existing)) throw Object.assign(new Error(name), { name: 'ParameterNotFound' })
        return { Parameter: { Name: name, Type: existing[name], Value: 'pk_test_value' } }
      }
      expect(command).toBeInstanceOf(GetParametersCommand)
      requests.push(command.input)
      const names = command.input.Names ?? []
      return {
        Parameters: names.filter((n) => n in existing).map((Name) => ({ Name, Type: existing[Name] })),
        InvalidParameters: names.filter((n) => !(n in existing)),
      }
    }) as Ssm['send'],
  }
  return { ssm, requests }
}

const deps = (service: ResolvedService, ssm: Ssm) => {
  const lines = {
    log: [] as string[],
    error: [] as string[],
    resolved: [] as string[][],
    regions: [] as string[],
  }
  const value: PreflightDeps = {
    resolve: async (options) => {
      lines.resolved.push(options)
      return service
    },
    ssm: (region) => {
      lines.regions.push(region)
      return ssm
    },
    lambda: () => {
      throw new Error('no reserved concurrency asked: Lambda must not be called')
    },
    courier: async (baseUrl) => ({
      verdict: 'accepted',
      line: `Courier accepted the deployed token (${baseUrl})`,
    }),
    log: (line) => lines.log.push(line),
    error: (line) => lines.error.push(line),
  }
  return { deps: value, lines }
}

const COURIER = '/segment-courier-relay/prod/courier-auth-token'
const TOKEN = '/segment-courier-relay/prod/ingest-token'

describe('npm run deploy preflight', () => {
  it('reads osls options in both forms and passes print only what it understands', () => {
    const argv = [
      '--stage',
      'prod',
      '--region=eu-west-1',
      '--param=ingestAuth=both',
      '--param',
      'alarmEmail=a=b@x',
      '--force',
    ]
    expect(printOptions(argv)).toEqual(argv.slice(0, 6))
    expect(stageParams(argv)).toEqual(
      new Map([
        ['ingestAuth', 'both'],
        ['alarmEmail', 'a=b@x'],
      ]),
    )
  })

  it('refuses an ingestAuth outside the three modes before resolving anything', async () => {
    const { deps: d, lines } = deps({}, ssmStub({}).ssm)
    expect(await preflight(['--param=ingestAuth=open'], d)).toBe(1)
    expect(lines.error.join('\n')).toContain(`not one of ${INGEST_AUTH_MODES.join(', ')}`)
    expect(lines.resolved).toEqual([])
  })

  it('finds the SSM parameters a stage needs in serverless.yml as osls resolves it', () => {
    expect(tokenStage.provider?.stage).toBe('prod')
    expect(requiredSecretParameters(tokenStage).sort()).toEqual([COURIER, TOKEN])
    expect(configurationProblems(tokenStage)).toEqual([])
  })

  it('refuses a stage whose SSM parameters do not exist, naming each, without reading any value', async () => {
    const { ssm, requests } = ssmStub({ [COURIER]: 'SecureString' })
    const { deps: d, lines } = deps(tokenStage, ssm)
    expect(await preflight(['--stage', 'prod', '--param=ingestAuth=token', '--force'], d)).toBe(1)
    expect(lines.resolved).toEqual([['--stage', 'prod', '--param=ingestAuth=token']])
    expect(lines.regions).toEqual(['us-east-1'])
    expect(requests.every((request) => request.WithDecryption === false)).toBe(true)
    const message = lines.error.join('\n')
    expect(message).toContain(`- ${TOKEN}`)
    expect(message).toContain(`--type SecureString --name ${TOKEN}`)
    expect(message).not.toContain(`- ${COURIER}`)
  })

  it('passes a stage whose parameters exist, warning about one that is not a SecureString', async () => {
    const { deps: d, lines } = deps(tokenStage, ssmStub({ [COURIER]: 'SecureString', [TOKEN]: 'String' }).ssm)
    expect(await preflight(['--stage', 'prod'], d)).toBe(0)
    expect(lines.error).toEqual([expect.stringContaining(`warning: ${TOKEN} is not a SecureString`)])
    expect(lines.log.join('\n')).toContain('stage prod in us-east-1 ok')
  })

  it('refuses when SSM cannot be asked (no credentials)', async () => {
    const failing: Ssm = {
      send: (async () => {
        throw Object.assign(new Error('Could not load credentials from any providers'), {
          name: 'CredentialsProviderError',
        })
      }) as Ssm['send'],
    }
    const { deps: d, lines } = deps(tokenStage, failing)
    expect(await preflight([], d)).toBe(1)
    expect(lines.error.join('\n')).toContain('CredentialsProviderError')
  })

  it('refuses overrides that break the queue and concurrency relations, and names without a leading slash', async () => {
    const deliver = tokenStage.functions?.deliver
    const broken: ResolvedService = {
      ...tokenStage,
      functions: { ...tokenStage.functions, deliver: { ...deliver, timeout: 120, reservedConcurrency: 2 } },
      resources: {
        ...tokenStage.resources,
        Parameters: {
          ...tokenStage.resources?.Parameters,
          CourierTokenParameterName: { Type: 'AWS::SSM::Parameter::Name', Default: 'courier-token' },
        },
      },
    }
    const problems = configurationProblems(broken)
    const fifoBatch = configurationProblems({
      ...tokenStage,
      functions: {
        ...tokenStage.functions,
        deliver: { ...deliver, events: [{ sqs: { maximumConcurrency: 5, batchSize: 20 } }] },
      },
    })
    expect(fifoBatch).toEqual([expect.stringContaining('deliverBatchSize 20 is above 10')])
    expect(problems).toEqual([
      expect.stringContaining('"courier-token" must start with "/"'),
      expect.stringContaining('VisibilityTimeout ≥ 720 s'),
      expect.stringContaining('reserved concurrency 2 is below'),
    ])
    const { deps: d, lines } = deps(broken, ssmStub({}).ssm)
    expect(await preflight([], d)).toBe(1)
    expect(lines.regions).toEqual([])
  })

  it('checks SSM names ten per request', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `/p/${i}`)
    const { ssm, requests } = ssmStub(Object.fromEntries(names.map((n) => [n, 'SecureString'])))
    expect(await checkParameters(ssm, names)).toEqual({ missing: [], notSecure: [] })
    expect(requests.map((request) => request.Names?.length)).toEqual([10, 2])
  })
})
