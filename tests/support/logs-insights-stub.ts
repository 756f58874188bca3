import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * CloudWatch Logs Insights on loopback, for `npm run trace` on AWS: no emulator speaks it, so this
 * stub answers the two calls trace makes over the AWS JSON 1.1 protocol (`X-Amz-Target:
 * Logs_20140328.<Operation>`, errors as `{"__type", "message"}`), and enforces what the API
 * reference documents:
 * - StartQuery: exactly one of logGroupName, logGroupNames, logGroupIdentifiers; at most 50 log
 *   groups; startTime and endTime in epoch seconds, inclusive; a queryString (at most 10,000
 *   characters); limit 1–10,000 (default 1,000).
 *   https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_StartQuery.html
 * - GetQueryResults: an unknown queryId is ResourceNotFoundException; `status` is Scheduled,
 *   Running, Complete (or Failed, Cancelled, Timeout, Unknown); `results` is a list of rows, each a
 *   list of `{field, value}`, with `@ptr` besides the fields asked for; `@timestamp` as
 *   `yyyy-MM-dd HH:mm:ss.SSS` (UTC).
 *   https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetQueryResults.html
 * It understands one query shape only, the one trace sends (`filter @message like "…"`): any other
 * is a MalformedQueryException, so a change of the query cannot pass unnoticed. Each query is
 * Scheduled on the first GetQueryResults, Running on the second, Complete from the third.
 */

export interface StoredLine {
  readonly logGroup: string
  /** Epoch ms. */
  readonly timestamp: number
  readonly message: string
}

export interface InsightsStub {
  readonly url: string
  readonly calls: { operation: string; body: Record<string, unknown> }[]
  readonly put: (lines: readonly StoredLine[]) => void
  readonly stop: () => Promise<void>
}

const MAX_LOG_GROUPS = 50
const MAX_LIMIT = 10_000
const DEFAULT_LIMIT = 1_000
const MAX_QUERY_CHARS = 10_000

const insightsTime = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '')

export const startInsightsStub = async (): Promise<InsightsStub> => {
  const lines: StoredLine[] = []
  const calls: InsightsStub['calls'] = []
  const queries = new Map<string, { polls: number; rows: { field: string; value: string }[][] }>()
  let next = 0

  const answer = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' })
    response.end(JSON.stringify(body))
  }
  const fail = (response: ServerResponse, type: string, message: string) =>
    answer(response, 400, { __type: type, message })

  const startQuery = (response: ServerResponse, body: Record<string, unknown>) => {
    const given = ['logGroupName', 'logGroupNames', 'logGroupIdentifiers'].filter(
      (k) => body[k] !== undefined,
    )
    if (given.length !== 1) {
      return fail(
        response,
        'InvalidParameterException',
        'exactly one of logGroupName, logGroupNames, logGroupIdentifiers',
      )
    }
    const groups = (body.logGroupNames ?? body.logGroupIdentifiers ?? [body.logGroupName]) as string[]
    if (!Array.isArray(groups) || groups.length === 0 || groups.length > MAX_LOG_GROUPS) {
      return fail(response, 'InvalidParameterException', `1 to ${MAX_LOG_GROUPS} log groups`)
    }
    const { startTime, endTime, queryString } = body as {
      startTime: unknown
      endTime: unknown
      queryString: unknown
    }
    // Epoch seconds: a value in milliseconds would be thousands of years ahead.
    const seconds = (value: unknown) =>
      Number.isInteger(value) && (value as number) >= 0 && (value as number) < 1e11
    if (!seconds(startTime) || !seconds(endTime) || (endTime as number) < (startTime as number)) {
      return fail(
        response,
        'InvalidParameterException',
        'startTime and endTime are epoch seconds, start ≤ end',
      )
    }
    if (typeof queryString !== 'string' || queryString.length === 0 || queryString.length > MAX_QUERY_CHARS) {
      return fail(response, 'InvalidParameterException', 'queryString is 1 to 10000 characters')
    }
    const limit = body.limit ?? DEFAULT_LIMIT
    if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_LIMIT) {
      return fail(response, 'InvalidParameterException', `limit is 1 to ${MAX_LIMIT}`)
    }
    const shape =
      /^fields @timestamp, @message\n\| filter @message like "((?:[^"\\]|\\.)*)"\n\| sort @timestamp asc\n\| limit (\d+)$/.exec(
        queryString,
      )
    if (!shape) return fail(response, 'MalformedQueryException', 'the stub knows only trace’s query shape')
    const needle = (shape[1] as string).replace(/\\(.)/g, '$1')
    const rowLimit = Math.min(Number(shape[2]), limit as number)
    const from = (startTime as number) * 1000
    const to = (endTime as number) * 1000 + 999
    const rows = lines
      .filter((line) => groups.includes(line.logGroup) && line.timestamp >= from && line.timestamp <= to)
      .filter((line) => line.message.includes(needle))
      .sort((a, b) => a.timestamp - b.timestamp)
      .slice(0, rowLimit)
      .map((line, i) => [
        { field: '@timestamp', value: insightsTime(line.timestamp) },
        { field: '@message', value: line.message },
        { field: '@ptr', value: `ptr-${i}` },
      ])
    const queryId = `query-${++next}`
    queries.set(queryId, { polls: 0, rows })
    answer(response, 200, { queryId })
  }

  const getQueryResults = (response: ServerResponse, body: Record<string, unknown>) => {
    const query = queries.get(String(body.queryId))
    if (query === undefined) return fail(response, 'ResourceNotFoundException', 'no such query')
    query.polls++
    const status = query.polls === 1 ? 'Scheduled' : query.polls === 2 ? 'Running' : 'Complete'
    const results = status === 'Scheduled' ? [] : status === 'Running' ? query.rows.slice(0, 1) : query.rows
    answer(response, 200, {
      status,
      results,
      statistics: { recordsMatched: query.rows.length, recordsScanned: lines.length, bytesScanned: 0 },
    })
  }

  const read = (request: IncomingMessage) =>
    new Promise<string>((resolve) => {
      let text = ''
      request.on('data', (chunk) => {
        text += chunk
      })
      request.on('end', () => resolve(text))
    })

  const server = createServer(async (request, response) => {
    const target = String(request.headers['x-amz-target'] ?? '')
    const body = JSON.parse((await read(request)) || '{}') as Record<string, unknown>
    const operation = target.replace(/^Logs_20140328\./, '')
    calls.push({ operation, body })
    if (operation === 'StartQuery') return startQuery(response, body)
    if (operation === 'GetQueryResults') return getQueryResults(response, body)
    if (operation === 'StopQuery') return answer(response, 200, { success: true })
    fail(response, 'UnknownOperationException', `unknown operation ${target}`)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    put: (more) => {
      lines.push(...more)
    },
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
