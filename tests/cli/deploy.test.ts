import { CloudFormationClient } from '@aws-sdk/client-cloudformation'
import { LambdaClient } from '@aws-sdk/client-lambda'
import { GetParameterCommand, GetParametersCommand } from '@aws-sdk/client-ssm'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  judgeReservations,
  readAccountConcurrency,
  UNRESERVED_MINIMUM,
} from '../../lib/cli/account-concurrency.ts'
import { checkCourierToken, courierBaseUrl, verdictOf } from '../../lib/cli/courier-check.ts'
import {
  BATCHING_NEEDS_TOKEN,
  type DeployDeps,
  main,
  preflight,
  type ResolvedService,
  requestedReservations,
  resolveWithOsls,
  type Ssm,
} from '../../lib/cli/preflight.ts'
import { cloudFormationApi, type LambdaAccount, lambdaApi } from '../support/aws-stubs.ts'
import { destroySocket, type HttpStub, hang, reply, startHttpStub } from '../support/http-stub.ts'

/**
 * `npm run deploy`'s checks that ask the world: the account's Lambda concurrency (a loopback
 * Lambda API), the Courier token (a loopback Courier), and the closing lines read from the stack's
 * outputs (a loopback CloudFormation), each through the real SDK client or fetch.
 */

const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' }
const STAGE = 'prod'
const COURIER = `/segment-courier-relay/${STAGE}/courier-auth-token`
const SECRET = `/segment-courier-relay/${STAGE}/segment-shared-secret`
const TOKEN = `/segment-courier-relay/${STAGE}/ingest-token`
const COURIER_KEY = 'pk_prod_K3Y'
const fn = (name: string) => `segment-courier-relay-${STAGE}-${name}`

let lambdaStub: HttpStub
let courierStub: HttpStub
let cloudFormationStub: HttpStub
/** osls print of the stages the tests deploy, resolved once (offline). */
let signatureStage: ResolvedService
let reservingStage: ResolvedService

const resolveStage = (params: string[]) =>
  resolveWithOsls(['--stage', STAGE, ...params.map((p) => `--param=${p}`)])

beforeAll(async () => {
  ;[lambdaStub, courierStub, cloudFormationStub] = await Promise.all([
    startHttpStub(),
    startHttpStub(),
    startHttpStub(),
  ])
  ;[signatureStage, reservingStage] = await Promise.all([
    resolveStage([`courierBaseUrl=${courierStub.url}`]),
    resolveStage([
      'ingestAuth=both',
      `courierBaseUrl=${courierStub.url}`,
      'deliverReservedConcurrency=5',
      'audiencesReservedConcurrency=2',
    ]),
  ])
}, 60_000)
afterAll(() => Promise.all([lambdaStub.stop(), courierStub.stop(), cloudFormationStub.stop()]))
beforeEach(() => {
  lambdaStub.reset()
  courierStub.reset()
  cloudFormationStub.reset()
})

/** SSM: every named parameter exists as a SecureString; GetParameter gives the Courier key. */
const ssm: Ssm = {
  send: (async (command: GetParametersCommand | GetParameterCommand) => {
    if (command instanceof GetParameterCommand) {
      expect(command.input).toEqual({ Name: COURIER, WithDecryption: true })
      return { Parameter: { Name: COURIER, Type: 'SecureString', Value: COURIER_KEY } }
    }
    expect(command).toBeInstanceOf(GetParametersCommand)
    return { Parameters: (command.input.Names ?? []).map((Name) => ({ Name, Type: 'SecureString' })) }
  }) as Ssm['send'],
}

const lambdaAt = (url: string) =>
  new LambdaClient({ region: 'us-east-1', endpoint: url, credentials: CREDENTIALS })

const run = (service: ResolvedService) => {
  const lines = { log: [] as string[], error: [] as string[], deployed: [] as (readonly string[])[] }
  const deps: DeployDeps = {
    resolve: async () => service,
    ssm: () => ssm,
    lambda: () => lambdaAt(lambdaStub.url),
    courier: (baseUrl, token) => checkCourierToken(baseUrl, token),
    deploy: (options) => {
      lines.deployed.push(options)
      return 0
    },
    cloudFormation: () =>
      new CloudFormationClient({
        region: 'us-east-1',
        endpoint: cloudFormationStub.url,
        credentials: CREDENTIALS,
      }),
    log: (line) => lines.log.push(line),
    error: (line) => lines.error.push(line),
  }
  return { deps, lines }
}

describe('reserved concurrency against the account (Lambda GetAccountSettings)', () => {
  it('asks nothing of Lambda by default: no function reserves concurrency', async () => {
    // Prepare
    courierStub.handle(reply(200, {}))
    const { deps, lines } = run(signatureStage)

    // Act
    const status = await preflight(['--stage', STAGE], deps)

    // Assess
    expect(requestedReservations(signatureStage)).toEqual([])
    expect(status).toBe(0)
    expect(lambdaStub.requests).toEqual([])
    expect(lines.log.at(-1)).toContain(`stage ${STAGE} in us-east-1 ok`)
  })

  it('refuses in one line, naming the numbers, on a new account whose quota is 10', async () => {
    // Prepare: the quota new accounts start with, nothing reserved yet, the stage not deployed
    courierStub.handle(reply(200, {}))
    lambdaStub.handle(lambdaApi({ quota: 10, functions: {} }))
    const { deps, lines } = run(reservingStage)

    // Act
    const status = await preflight(['--stage', STAGE], deps)

    // Assess
    expect(status).toBe(1)
    const refusal = lines.error.filter((line) => line.includes('is refused'))
    expect(refusal).toEqual([
      `preflight: stage ${STAGE} is refused: reserved concurrency 7 (deliver 5, audiences 2) would leave 3 of the account's 10 unreserved in us-east-1, below the 10 Lambda keeps for other functions: leave the *ReservedConcurrency parameters empty, lower them, or raise the Lambda concurrent executions quota (Service Quotas)`,
    ])
    // Both functions looked up (not deployed yet: they hold nothing), then the account.
    expect(lambdaStub.requests.map((r) => `${r.method} ${r.url}`).sort()).toEqual(
      [
        'GET /2016-08-19/account-settings',
        `GET /2019-09-30/functions/${fn('audiences')}/concurrency`,
        `GET /2019-09-30/functions/${fn('deliver')}/concurrency`,
      ].sort(),
    )
  })

  it('passes an account with room, and counts what the stage already holds on a redeploy', async () => {
    // Prepare: quota 110; another function holds 0, the stage's own deliver already holds 5
    courierStub.handle(reply(200, {}))
    const account: LambdaAccount = {
      quota: 110,
      functions: { [fn('deliver')]: 5, [fn('audiences')]: undefined, other: undefined },
    }
    lambdaStub.handle(lambdaApi(account))
    const { deps, lines } = run(reservingStage)

    // Act
    const status = await preflight(['--stage', STAGE], deps)
    const read = await readAccountConcurrency(lambdaAt(lambdaStub.url), requestedReservations(reservingStage))

    // Assess: 105 unreserved + 5 held - 7 asked = 103 ≥ 100
    expect(read).toEqual({ quota: 110, unreserved: 105, heldByStage: 5 })
    expect(status).toBe(0)
    expect(lines.log).toContainEqual(
      "preflight: reserved concurrency 7 (deliver 5, audiences 2) fits: 103 of the account's 110 stay unreserved in us-east-1 (at least 100 must)",
    )
  })

  it.each([
    { quota: 1000, unreserved: 1000, held: 0, asked: 900, ok: true },
    { quota: 1000, unreserved: 1000, held: 0, asked: 901, ok: false },
    { quota: 50, unreserved: 50, held: 0, asked: 1, ok: false },
    { quota: 1000, unreserved: 150, held: 20, asked: 70, ok: true },
    { quota: 1000, unreserved: 150, held: 20, asked: 71, ok: false },
  ])(
    'quota $quota, unreserved $unreserved, held $held, asked $asked → ok $ok',
    ({ quota, unreserved, held, asked, ok }) => {
      const verdict = judgeReservations(
        [{ function: 'deliver', name: fn('deliver'), reserved: asked }],
        { quota, unreserved, heldByStage: held },
        'eu-west-1',
      )

      expect(verdict.ok).toBe(ok)
      expect(verdict.line).toContain(`of the account's ${quota}`)
      expect(verdict.line).toContain(String(Math.min(UNRESERVED_MINIMUM, quota)))
    },
  )

  it('refuses when the account settings cannot be read', async () => {
    courierStub.handle(reply(200, {}))
    lambdaStub.handle(reply(403, { Message: 'not allowed' }, { 'x-amzn-ErrorType': 'AccessDeniedException' }))
    const { deps, lines } = run(reservingStage)

    expect(await preflight(['--stage', STAGE], deps)).toBe(1)
    expect(lines.error.at(-1)).toMatch(
      /could not read the account's Lambda concurrency in us-east-1 \(AccessDeniedException/,
    )
  })
})

describe("the Courier token, tried as Courier's own Segment destination tries it", () => {
  it('posts once to /debug with the deployed token and says it was accepted', async () => {
    courierStub.handle(reply(200, { status: 'ok' }))
    const { deps, lines } = run(signatureStage)

    expect(await preflight(['--stage', STAGE], deps)).toBe(0)

    expect(courierStub.requests).toHaveLength(1)
    expect(courierStub.requests[0]).toMatchObject({
      method: 'POST',
      url: '/debug',
      headers: { authorization: `Bearer ${COURIER_KEY}` },
    })
    expect(lines.log).toContainEqual(
      `preflight: Courier accepted the deployed token (POST ${courierStub.url}/debug: HTTP 200)`,
    )
    expect([...lines.log, ...lines.error].join('\n')).not.toContain(COURIER_KEY)
  })

  it.each([401, 403])('refuses the deploy when Courier answers %i', async (status) => {
    courierStub.handle(reply(status, { message: 'Unauthorized', type: 'authentication_error' }))
    lambdaStub.handle(lambdaApi({ quota: 1000, functions: {} }))
    const { deps, lines } = run(reservingStage)

    expect(await preflight(['--stage', STAGE], deps)).toBe(1)

    expect(lines.error).toContainEqual(
      `preflight: stage ${STAGE} is refused: Courier refused the deployed token (POST ${courierStub.url}/debug: HTTP ${status}); put the right key in ${COURIER}`,
    )
    // Refused before anything else is asked.
    expect(lambdaStub.requests).toEqual([])
  })

  it('warns and goes on when Courier cannot be reached or cannot say', async () => {
    // Prepare: a 503, a dropped connection, no answer
    const answers = [reply(503, { message: 'down' }), destroySocket, hang]
    const verdicts: string[] = []

    // Act
    for (const answer of answers) {
      courierStub.handle(answer)
      verdicts.push((await checkCourierToken(courierStub.url, COURIER_KEY, { timeoutMs: 200 })).line)
    }
    courierStub.handle(reply(503, {}))
    const { deps, lines } = run(signatureStage)
    const status = await preflight(['--stage', STAGE], deps)

    // Assess
    expect(verdicts).toEqual([
      `Courier could not say whether it takes the deployed token (POST ${courierStub.url}/debug: HTTP 503)`,
      expect.stringMatching(/^Courier is unreachable \(POST .*\/debug: /),
      `Courier is unreachable (POST ${courierStub.url}/debug: no answer in time)`,
    ])
    expect(status).toBe(0)
    expect(lines.error).toContainEqual(
      expect.stringMatching(/^preflight: warning: Courier could not say .* the token is not checked$/),
    )
  })

  it('calls the base URL deliver will use', () => {
    expect(courierBaseUrl('us', undefined)).toBe('https://api.courier.com')
    expect(courierBaseUrl('eu', '')).toBe('https://api.eu.courier.com')
    expect(courierBaseUrl('eu', 'https://courier.example/')).toBe('https://courier.example')
    expect([200, 202, 401, 403, 404, 429, 500].map(verdictOf)).toEqual([
      'accepted',
      'accepted',
      'refused',
      'refused',
      'unreachable',
      'unreachable',
      'unreachable',
    ])
  })
})

describe('Segment batching and ingestAuth', () => {
  it('warns with ingestAuth=signature that batching needs the bearer token, and not with a token', async () => {
    courierStub.handle(reply(200, {}))
    lambdaStub.handle(lambdaApi({ quota: 1000, functions: {} }))
    const signature = run(signatureStage)
    const both = run(reservingStage)

    await preflight(['--stage', STAGE], signature.deps)
    await preflight(['--stage', STAGE], both.deps)

    expect(signature.lines.error).toContainEqual(`preflight: warning: ${BATCHING_NEEDS_TOKEN}`)
    expect(BATCHING_NEEDS_TOKEN).toMatch(/needs the bearer token.*ingestAuth=token or both/)
    expect(both.lines.error.join('\n')).not.toContain('batching')
  })
})

describe('npm run deploy', () => {
  it('ends with the webhook URL and the next step, naming the credentials Segment must send', async () => {
    // Prepare
    const url = 'https://abc123.execute-api.us-east-1.amazonaws.com/segment'
    courierStub.handle(reply(200, {}))
    lambdaStub.handle(lambdaApi({ quota: 1000, functions: {} }))
    cloudFormationStub.handle(cloudFormationApi({ [`segment-courier-relay-${STAGE}`]: { WebhookUrl: url } }))
    const { deps, lines } = run(reservingStage)

    // Act
    const status = await main(['deploy', '--stage', STAGE, '--force'], deps)

    // Assess
    expect(status).toBe(0)
    expect(lines.deployed).toEqual([['--stage', STAGE, '--force']])
    expect(new URLSearchParams(cloudFormationStub.requests[0]?.body).get('StackName')).toBe(
      `segment-courier-relay-${STAGE}`,
    )
    const closing = lines.log.slice(-3)
    expect(closing[0]).toBe(`Webhook URL: ${url}`)
    expect(closing[1]).toMatch(
      /^Next: in Segment, add a Webhooks \(Actions\) destination .*Shared Secret.*Bearer/,
    )
    expect(closing[1]).toContain(SECRET)
    expect(closing[1]).toContain(TOKEN)
    expect(closing[2]).toMatch(
      new RegExp(`^  npm run send-test-event -- --url ${url} --secret .* --token .*`),
    )
  })

  it('runs no deploy when the preflight refuses, and prints no URL when the deploy fails', async () => {
    courierStub.handle(reply(401, {}))
    const refused = run(signatureStage)
    expect(await main(['deploy', '--stage', STAGE], refused.deps)).toBe(1)
    expect(refused.lines.deployed).toEqual([])

    courierStub.handle(reply(200, {}))
    const failed = run(signatureStage)
    const deps = { ...failed.deps, deploy: () => 2 }
    expect(await main(['deploy', '--stage', STAGE], deps)).toBe(2)
    expect(cloudFormationStub.requests).toEqual([])
    expect(failed.lines.log.join('\n')).not.toContain('Webhook URL')
  })

  it('says where to find the URL when the stack outputs cannot be read', async () => {
    courierStub.handle(reply(200, {}))
    cloudFormationStub.handle(cloudFormationApi({}))
    const { deps, lines } = run(signatureStage)

    expect(await main(['deploy', '--stage', STAGE], deps)).toBe(0)

    expect(lines.error.at(-1)).toMatch(
      /^deployed, but the webhook URL could not be read \(Stack with id segment-courier-relay-prod does not exist\); it is the WebhookUrl output/,
    )
  })
})
