import { execFile, spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { promisify } from 'node:util'
import { CloudFormationClient } from '@aws-sdk/client-cloudformation'
import { LambdaClient } from '@aws-sdk/client-lambda'
import {
  GetParameterCommand,
  type GetParameterCommandOutput,
  GetParametersCommand,
  type GetParametersCommandOutput,
  SSMClient,
} from '@aws-sdk/client-ssm'
import {
  judgeReservations,
  type Lambda,
  type Reservation,
  readAccountConcurrency,
} from './account-concurrency.ts'
import { runCli } from './args.ts'
import { type CourierTokenCheck, checkCourierToken, courierBaseUrl } from './courier-check.ts'
import { type CloudFormation, nextSteps, stackOutputs } from './stack-outputs.ts'

/**
 * `npm run deploy -- --stage prod [--region …] [--param="name=value" …]`: refuses a stage that
 * could not work before CloudFormation is asked, runs `osls deploy` with the same options, and
 * ends with the webhook URL and the next step. `node lib/cli/preflight.ts [options]` only checks.
 *
 * It reads the stage's configuration exactly as osls resolves it (`osls print`, offline) and
 * refuses, naming what is wrong:
 * - an `ingestAuth` other than signature, token or both (ingest would have no credentials);
 * - an SSM parameter the stage needs that does not exist (checked with the caller's credentials;
 *   CloudFormation checks it again, as the names are typed AWS::SSM::Parameter::Name);
 * - a parameter name without a leading '/' (the IAM grants are built as `parameter${name}`);
 * - a deliver timeout the events queue's visibility timeout is not 6 × (AWS's guidance for SQS
 *   event sources, https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html);
 * - a reserved concurrency below the event source's maximum concurrency
 *   (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html);
 * - a Courier token Courier refuses (lib/cli/courier-check.ts): one line, accepted, refused or
 *   unreachable (unreachable only warns: it says nothing about the token);
 * - reserved concurrency the account cannot give (lib/cli/account-concurrency.ts), asked only
 *   when a *ReservedConcurrency parameter is set.
 * With ingestAuth=signature it warns that Segment's batching needs the bearer token.
 */

export const INGEST_AUTH_MODES = ['signature', 'token', 'both'] as const

/** The part of `osls print --format json` the checks read. */
export interface ResolvedService {
  readonly service?: string
  readonly provider?: { readonly stage?: string; readonly region?: string }
  readonly functions?: Readonly<
    Record<
      string,
      {
        readonly name?: string
        readonly timeout?: number | string
        readonly reservedConcurrency?: number | string
        readonly environment?: Readonly<Record<string, unknown>>
        readonly events?: readonly {
          readonly sqs?: {
            readonly maximumConcurrency?: number | string
            readonly batchSize?: number | string
          }
        }[]
      }
    >
  >
  readonly custom?: { readonly queueType?: { readonly fifo?: string } }
  readonly resources?: {
    readonly Parameters?: Readonly<Record<string, { readonly Type?: string; readonly Default?: string }>>
    readonly Resources?: Readonly<Record<string, { readonly Properties?: Record<string, unknown> }>>
    /** Properties merged into the resources osls generates (the functions' reserved concurrency). */
    readonly extensions?: Readonly<Record<string, { readonly Properties?: Record<string, unknown> }>>
  }
}

export type Ssm = Pick<SSMClient, 'send'>

export interface PreflightDeps {
  readonly resolve: (options: string[]) => Promise<ResolvedService>
  readonly ssm: (region: string, profile: string | undefined) => Ssm
  readonly lambda: (region: string, profile: string | undefined) => Lambda
  /** Asks Courier once with the token (lib/cli/courier-check.ts). */
  readonly courier: (baseUrl: string, token: string) => Promise<CourierTokenCheck>
  readonly log: (line: string) => void
  readonly error: (line: string) => void
}

/** What `npm run deploy` needs beyond the checks: the deploy itself and the stack's outputs. */
export interface DeployDeps extends PreflightDeps {
  /** Runs `osls deploy` with these options; its exit status. */
  readonly deploy: (options: readonly string[]) => number
  readonly cloudFormation: (region: string, profile: string | undefined) => CloudFormation
}

/** Options osls print understands; deploy-only ones (--force, --conceal …) are not passed to it. */
const PRINT_OPTIONS = new Set([
  '--stage',
  '-s',
  '--region',
  '-r',
  '--param',
  '--aws-profile',
  '--config',
  '-c',
])

/** The options of `argv` osls print accepts, in both `--name value` and `--name=value` forms. */
export const printOptions = (argv: readonly string[]): string[] => {
  const kept: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const name = arg.split('=')[0] as string
    if (!PRINT_OPTIONS.has(name)) continue
    if (arg.includes('=')) kept.push(arg)
    else if (i + 1 < argv.length) kept.push(arg, argv[++i] as string)
  }
  return kept
}

const optionValue = (options: readonly string[], names: readonly string[]): string | undefined => {
  let value: string | undefined
  for (let i = 0; i < options.length; i++) {
    const [name, ...rest] = (options[i] as string).split('=')
    if (!names.includes(name as string)) continue
    value = rest.length > 0 ? rest.join('=') : options[++i]
  }
  return value
}

/** `--param="name=value"` pairs (the last one wins, as in osls). */
export const stageParams = (argv: readonly string[]): Map<string, string> => {
  const params = new Map<string, string>()
  const options = printOptions(argv)
  for (let i = 0; i < options.length; i++) {
    const arg = options[i] as string
    if (arg !== '--param' && !arg.startsWith('--param=')) continue
    const pair = arg === '--param' ? (options[++i] as string) : arg.slice('--param='.length)
    const at = pair.indexOf('=')
    if (at > 0) params.set(pair.slice(0, at), pair.slice(at + 1))
  }
  return params
}

const SSM_NAME = 'AWS::SSM::Parameter::Name'

/** Template parameters naming the value a rotation retires: empty unless a rotation is under way. */
const ROTATION_PARAMETER = /PreviousParameterName$/

/**
 * The SSM parameters the stage needs: the template parameters typed AWS::SSM::Parameter::Name,
 * and a rotation's previous secret or token when one is named (typed String, as it is usually
 * empty, so CloudFormation would not look it up).
 */
export const requiredSecretParameters = (service: ResolvedService): string[] =>
  Object.entries(service.resources?.Parameters ?? {})
    .filter(
      ([id, parameter]) =>
        typeof parameter.Default === 'string' &&
        (parameter.Type === SSM_NAME || (ROTATION_PARAMETER.test(id) && parameter.Default !== '')),
    )
    .map(([, parameter]) => parameter.Default as string)

const capitalised = (name: string) => `${name[0]?.toUpperCase() ?? ''}${name.slice(1)}`

/**
 * The reserved concurrency each function asks for: its `reservedConcurrency`, or the
 * ReservedConcurrentExecutions the template merges into its generated resource
 * (`resources.extensions.<Name>LambdaFunction`, from the *ReservedConcurrency parameters).
 */
export const requestedReservations = (service: ResolvedService): Reservation[] => {
  const stage = service.provider?.stage ?? 'dev'
  const reservations: Reservation[] = []
  for (const [key, fn] of Object.entries(service.functions ?? {})) {
    const extension = service.resources?.extensions?.[`${capitalised(key)}LambdaFunction`]?.Properties
    const reserved = fn.reservedConcurrency ?? extension?.ReservedConcurrentExecutions
    if (reserved === undefined || reserved === null || reserved === '') continue
    reservations.push({
      function: key,
      name: fn.name ?? `${service.service ?? 'segment-courier-relay'}-${stage}-${key}`,
      reserved: Number(reserved),
    })
  }
  return reservations
}

/** The SSM names of the ingest credentials the stage uses (undefined: its mode does not use it). */
export const ingestCredentialNames = (service: ResolvedService) => {
  const parameters = service.resources?.Parameters ?? {}
  const used = (id: string) =>
    parameters[id]?.Type === SSM_NAME ? (parameters[id]?.Default as string | undefined) : undefined
  return {
    sharedSecretParameter: used('SharedSecretParameterName'),
    ingestTokenParameter: used('IngestTokenParameterName'),
  }
}

/**
 * Webhooks (Actions) signs a batch over its first event only, so only the bearer token covers a
 * whole batch: with signature alone, Segment's batching must stay off.
 * https://github.com/segmentio/action-destinations/blob/main/packages/destination-actions/src/destinations/webhook/index.ts
 */
export const BATCHING_NEEDS_TOKEN =
  'ingestAuth=signature: Segment batching (Webhooks (Actions) batches, signed over their first event only) needs the bearer token: ' +
  'keep batching off in Segment, or deploy with ingestAuth=token or both'

const text = (value: unknown): string | undefined =>
  value === undefined || value === null || String(value).trim() === '' ? undefined : String(value)

/** The Courier API deliver will call: COURIER_BASE_URL, else COURIER_REGION's. */
export const deployedCourierBaseUrl = (service: ResolvedService): string => {
  const environment = service.functions?.deliver?.environment ?? {}
  return courierBaseUrl(text(environment.COURIER_REGION), text(environment.COURIER_BASE_URL))
}

/** Problems the resolved configuration shows without asking AWS anything. */
export const configurationProblems = (service: ResolvedService): string[] => {
  const problems: string[] = []
  for (const name of requiredSecretParameters(service)) {
    if (!name.startsWith('/')) {
      problems.push(`SSM parameter name "${name}" must start with "/" (e.g. /segment-courier-relay/prod/…)`)
    }
  }
  const deliver = service.functions?.deliver
  const timeout = Number(deliver?.timeout ?? 6)
  const visibility = Number(service.resources?.Resources?.EventsQueue?.Properties?.VisibilityTimeout ?? 30)
  if (visibility < 6 * timeout) {
    problems.push(
      `deliverTimeoutSeconds ${timeout} needs the events queue's VisibilityTimeout ≥ ${6 * timeout} s ` +
        `(6 × the timeout), but it is ${visibility} s: raise VisibilityTimeout in serverless.yml too`,
    )
  }
  const maximum = deliver?.events?.find((event) => event.sqs)?.sqs?.maximumConcurrency
  const reserved = deliver?.reservedConcurrency
  if (maximum !== undefined && reserved !== undefined && Number(reserved) < Number(maximum)) {
    problems.push(
      `deliver's reserved concurrency ${reserved} is below the event source's maximum concurrency ${maximum}: ` +
        'the mapping would be throttled, and throttled batches use up receives',
    )
  }
  // A FIFO event source takes batches of 1 to 10 records.
  // https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
  const batchSize = deliver?.events?.find((event) => event.sqs)?.sqs?.batchSize
  if (service.custom?.queueType?.fifo === 'true' && batchSize !== undefined && Number(batchSize) > 10) {
    problems.push(
      `deliverBatchSize ${batchSize} is above 10, the most a FIFO queue's event source takes: lower it, or deploy with queueType=standard`,
    )
  }
  return problems
}

export interface ParameterCheck {
  readonly missing: string[]
  readonly notSecure: string[]
}

/** Which of `names` do not exist, and which are not SecureStrings. Reads no values. */
export const checkParameters = async (ssm: Ssm, names: readonly string[]): Promise<ParameterCheck> => {
  const missing: string[] = []
  const notSecure: string[] = []
  // GetParameters takes at most 10 names per call.
  for (let i = 0; i < names.length; i += 10) {
    const chunk = names.slice(i, i + 10)
    const result = (await ssm.send(
      new GetParametersCommand({ Names: chunk, WithDecryption: false }),
    )) as GetParametersCommandOutput
    const found = new Map((result.Parameters ?? []).map((parameter) => [parameter.Name, parameter.Type]))
    for (const name of chunk) {
      if (!found.has(name)) missing.push(name)
      else if (found.get(name) !== 'SecureString') notSecure.push(name)
    }
  }
  return { missing, notSecure }
}

const putParameterHint = (name: string, region: string) =>
  `  aws ssm put-parameter --region ${region} --type SecureString --name ${name} --value '…'`

/** Runs every check; 0 when the stage may be deployed, 1 (with the reasons on stderr) otherwise. */
export const preflight = async (argv: readonly string[], deps: PreflightDeps): Promise<number> => {
  const options = printOptions(argv)
  const ingestAuth = stageParams(argv).get('ingestAuth')
  if (ingestAuth !== undefined && !(INGEST_AUTH_MODES as readonly string[]).includes(ingestAuth)) {
    deps.error(
      `preflight: ingestAuth "${ingestAuth}" is not one of ${INGEST_AUTH_MODES.join(', ')}: ` +
        'ingest must authenticate Segment, so the deploy is refused',
    )
    return 1
  }

  let service: ResolvedService
  try {
    service = await deps.resolve(options)
  } catch (error) {
    deps.error(`preflight: serverless.yml does not resolve for these options:\n${(error as Error).message}`)
    return 1
  }
  const stage = service.provider?.stage ?? 'dev'
  const region = service.provider?.region ?? 'us-east-1'

  const problems = configurationProblems(service)
  const names = requiredSecretParameters(service)
  if (names.length < 2) {
    // The Courier token and at least one ingest credential: fewer means ingest would be open.
    problems.push(
      `expected the Courier token and an ingest credential among the SSM parameters, got: ${names.join(', ') || 'none'}`,
    )
  }
  if (problems.length > 0) {
    deps.error(`preflight: stage ${stage} is refused:\n${problems.map((p) => `- ${p}`).join('\n')}`)
    return 1
  }

  const profile = optionValue(options, ['--aws-profile'])
  const ssm = deps.ssm(region, profile)
  let check: ParameterCheck
  try {
    check = await checkParameters(ssm, names)
  } catch (error) {
    deps.error(
      `preflight: could not check the SSM parameters in ${region} (${(error as Error).name}: ${(error as Error).message}). ` +
        'A deploy needs AWS credentials allowed ssm:GetParameters on them.',
    )
    return 1
  }
  if (check.missing.length > 0) {
    deps.error(
      `preflight: stage ${stage} is refused: these SSM parameters do not exist in ${region}:\n` +
        `${check.missing.map((name) => `- ${name}`).join('\n')}\nCreate them (README, "Deploy"):\n` +
        check.missing.map((name) => putParameterHint(name, region)).join('\n'),
    )
    return 1
  }
  for (const name of check.notSecure) {
    deps.error(`preflight: warning: ${name} is not a SecureString; secrets belong in SecureStrings`)
  }
  const credentials = ingestCredentialNames(service)
  if (credentials.ingestTokenParameter === undefined)
    deps.error(`preflight: warning: ${BATCHING_NEEDS_TOKEN}`)

  const courier = await checkDeployedToken(service, ssm, deps)
  if (courier === 'refused') return 1

  const reservations = requestedReservations(service)
  if (reservations.length > 0) {
    try {
      const account = await readAccountConcurrency(deps.lambda(region, profile), reservations)
      const verdict = judgeReservations(reservations, account, region)
      if (!verdict.ok) {
        deps.error(`preflight: stage ${stage} is refused: ${verdict.line}`)
        return 1
      }
      deps.log(`preflight: ${verdict.line}`)
    } catch (error) {
      deps.error(
        `preflight: stage ${stage} is refused: could not read the account's Lambda concurrency in ${region} ` +
          `(${(error as Error).name}: ${(error as Error).message}); reserved concurrency needs lambda:GetAccountSettings and lambda:GetFunctionConcurrency`,
      )
      return 1
    }
  }
  deps.log(`preflight: stage ${stage} in ${region} ok (SSM parameters present: ${names.join(', ')})`)
  return 0
}

/** Reads the Courier token the stage deploys and asks Courier once; prints the one-line verdict. */
const checkDeployedToken = async (
  service: ResolvedService,
  ssm: Ssm,
  deps: PreflightDeps,
): Promise<CourierTokenCheck['verdict']> => {
  const name = service.resources?.Parameters?.CourierTokenParameterName?.Default
  if (name === undefined) return 'unreachable'
  let token: string | undefined
  try {
    const answer = (await ssm.send(
      new GetParameterCommand({ Name: name, WithDecryption: true }),
    )) as GetParameterCommandOutput
    token = answer.Parameter?.Value
  } catch (error) {
    deps.error(
      `preflight: warning: could not read ${name} to try it on Courier (${(error as Error).name}); the token is not checked`,
    )
    return 'unreachable'
  }
  const check = await deps.courier(deployedCourierBaseUrl(service), token ?? '')
  if (check.verdict === 'refused') {
    deps.error(
      `preflight: stage ${service.provider?.stage ?? 'dev'} is refused: ${check.line}; put the right key in ${name}`,
    )
  } else if (check.verdict === 'unreachable') {
    deps.error(`preflight: warning: ${check.line}; the token is not checked`)
  } else {
    deps.log(`preflight: ${check.line}`)
  }
  return check.verdict
}

const localRequire = createRequire(import.meta.url)
const OSLS = localRequire.resolve('osls/bin/serverless.js')

/** The configuration as osls resolves it: offline, no AWS call (only ${param}, ${opt}, ${self}, ${sls}). */
export const resolveWithOsls = async (options: string[]): Promise<ResolvedService> => {
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [OSLS, 'print', '--format', 'json', ...options],
      { maxBuffer: 64 * 1024 * 1024 },
    )
    return JSON.parse(stdout) as ResolvedService
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string }
    const detail = `${stdout ?? ''}${stderr ?? ''}`
      .split('\n')
      .filter((line) => line.trim() !== '' && !/^(Environment|Docs|Support|Bugs):/.test(line))
      .join('\n')
    throw new Error(detail || (error as Error).message)
  }
}

const clientOptions = (region: string, profile: string | undefined) => ({
  region,
  ...(profile ? { profile } : {}),
})

export const defaultDeps: DeployDeps = {
  resolve: resolveWithOsls,
  ssm: (region, profile) => new SSMClient(clientOptions(region, profile)),
  lambda: (region, profile) => new LambdaClient(clientOptions(region, profile)),
  courier: (baseUrl, token) => checkCourierToken(baseUrl, token),
  deploy: (options) =>
    spawnSync(process.execPath, [OSLS, 'deploy', ...options], { stdio: 'inherit' }).status ?? 1,
  cloudFormation: (region, profile) => new CloudFormationClient(clientOptions(region, profile)),
  log: (line) => console.log(line),
  error: (line) => console.error(line),
}

const USAGE = `usage: npm run deploy -- [--stage <stage>] [--region <region>] [--param="name=value" …] [other osls deploy options]
       node lib/cli/preflight.ts [the same options]    (checks only)`

export const main = async (argv: string[], deps: DeployDeps = defaultDeps): Promise<number> => {
  const deploy = argv[0] === 'deploy'
  const options = deploy ? argv.slice(1) : argv
  if (options.includes('--help') || options.includes('-h')) {
    console.log(USAGE)
    return 0
  }
  const status = await preflight(options, deps)
  if (status !== 0 || !deploy) return status
  // The same options, unfiltered: osls deploy accepts more than print does.
  const deployed = deps.deploy(options)
  if (deployed !== 0) return deployed
  return closingLines(printOptions(options), deps)
}

/** After a deploy: the webhook URL from the stack's outputs, and what to do next. */
const closingLines = async (options: string[], deps: DeployDeps): Promise<number> => {
  const service = await deps.resolve(options)
  const stage = service.provider?.stage ?? 'dev'
  const region = service.provider?.region ?? 'us-east-1'
  const stackName = `${service.service ?? 'segment-courier-relay'}-${stage}`
  try {
    const outputs = await stackOutputs(
      deps.cloudFormation(region, optionValue(options, ['--aws-profile'])),
      stackName,
    )
    const url = outputs.WebhookUrl
    if (url === undefined) throw new Error(`stack ${stackName} has no WebhookUrl output`)
    for (const line of nextSteps(url, ingestCredentialNames(service), region)) deps.log(line)
    return 0
  } catch (error) {
    // Deployed all the same: say where the URL is instead.
    deps.error(
      `deployed, but the webhook URL could not be read (${(error as Error).message}); ` +
        `it is the WebhookUrl output of stack ${stackName} in ${region} (README, "Deploy", step 3)`,
    )
    return 0
  }
}

if (import.meta.main) await runCli(main)
