import type { ServerResponse } from 'node:http'
import type { RecordedRequest } from './http-stub.ts'

/**
 * Loopback answers for the AWS APIs the deploy preflight calls and no emulator here serves
 * (Lambda's account settings, CloudFormation's stack outputs), in each API's documented wire
 * format, so the real SDK clients are what the tests drive. Each refuses a request that is not
 * SigV4-signed, as AWS does.
 */

const json = (
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) => {
  response.writeHead(status, { 'content-type': 'application/json', ...headers })
  response.end(JSON.stringify(body))
}

const signed = (request: RecordedRequest) =>
  String(request.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256 Credential=')

export interface LambdaAccount {
  /** AccountLimit.ConcurrentExecutions */
  readonly quota: number
  /** Reserved concurrency per deployed function name (absent: the function does not exist). */
  readonly functions: Readonly<Record<string, number | undefined>>
}

/**
 * The Lambda REST API, two operations:
 * - GetAccountSettings: `GET /2016-08-19/account-settings/` → `{AccountLimit, AccountUsage}`, where
 *   UnreservedConcurrentExecutions is the quota minus every function's reservation.
 *   https://docs.aws.amazon.com/lambda/latest/api/API_GetAccountSettings.html
 * - GetFunctionConcurrency: `GET /2019-09-30/functions/{FunctionName}/concurrency` →
 *   `{ReservedConcurrentExecutions}` ({} without a reservation); 404 ResourceNotFoundException for
 *   a function that does not exist. https://docs.aws.amazon.com/lambda/latest/api/API_GetFunctionConcurrency.html
 * Errors carry their type in `x-amzn-ErrorType`, as the REST-JSON protocol does.
 */
export const lambdaApi = (account: LambdaAccount) => (request: RecordedRequest, response: ServerResponse) => {
  const error = (status: number, type: string, message: string) =>
    json(response, status, { Type: 'User', Message: message }, { 'x-amzn-ErrorType': type })
  if (!signed(request)) return error(403, 'AccessDeniedException', 'request is not signed')
  const path = request.url.split('?')[0] ?? ''
  if (request.method === 'GET' && /^\/2016-08-19\/account-settings\/?$/.test(path)) {
    const reserved = Object.values(account.functions).reduce<number>((sum, n) => sum + (n ?? 0), 0)
    return json(response, 200, {
      AccountLimit: {
        TotalCodeSize: 80_530_636_800,
        CodeSizeUnzipped: 262_144_000,
        CodeSizeZipped: 52_428_800,
        ConcurrentExecutions: account.quota,
        UnreservedConcurrentExecutions: account.quota - reserved,
      },
      AccountUsage: { TotalCodeSize: 0, FunctionCount: Object.keys(account.functions).length },
    })
  }
  const concurrency = /^\/2019-09-30\/functions\/([^/]+)\/concurrency$/.exec(path)
  if (request.method === 'GET' && concurrency) {
    const name = decodeURIComponent(concurrency[1] ?? '')
    if (!(name in account.functions)) {
      return error(
        404,
        'ResourceNotFoundException',
        `Function not found: arn:aws:lambda:us-east-1:123456789012:function:${name}`,
      )
    }
    const held = account.functions[name]
    return json(response, 200, held === undefined ? {} : { ReservedConcurrentExecutions: held })
  }
  return error(404, 'UnknownOperationException', `no ${request.method} ${path}`)
}

const xml = (text: string) => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')

/**
 * CloudFormation's query API, DescribeStacks only (a form-encoded POST, answered in XML).
 * A stack that does not exist is a 400 ValidationError "Stack with id … does not exist".
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html
 */
export const cloudFormationApi =
  (stacks: Readonly<Record<string, Readonly<Record<string, string>>>>) =>
  (request: RecordedRequest, response: ServerResponse) => {
    const form = new URLSearchParams(request.body)
    const fail = (status: number, code: string, message: string) => {
      response.writeHead(status, { 'content-type': 'text/xml' })
      response.end(
        `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xml(message)}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`,
      )
    }
    if (!signed(request)) return fail(403, 'InvalidClientTokenId', 'request is not signed')
    if (request.method !== 'POST' || form.get('Action') !== 'DescribeStacks') {
      return fail(400, 'InvalidAction', `no ${form.get('Action')}`)
    }
    const name = form.get('StackName') ?? ''
    const outputs = stacks[name]
    if (outputs === undefined) return fail(400, 'ValidationError', `Stack with id ${name} does not exist`)
    const members = Object.entries(outputs)
      .map(
        ([key, value]) =>
          `<member><OutputKey>${xml(key)}</OutputKey><OutputValue>${xml(value)}</OutputValue></member>`,
      )
      .join('')
    response.writeHead(200, { 'content-type': 'text/xml' })
    response.end(
      `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>` +
        `<StackName>${xml(name)}</StackName><StackId>arn:aws:cloudformation:us-east-1:123456789012:stack/${xml(name)}/1</StackId>` +
        `<StackStatus>UPDATE_COMPLETE</StackStatus><CreationTime>2026-01-01T00:00:00Z</CreationTime>` +
        `<Outputs>${members}</Outputs></member></Stacks></DescribeStacksResult>` +
        `<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></DescribeStacksResponse>`,
    )
  }
