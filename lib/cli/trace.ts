import {
  CloudWatchLogsClient,
  GetQueryResultsCommand,
  type ResultField,
  StartQueryCommand,
  StopQueryCommand,
} from '@aws-sdk/client-cloudwatch-logs'
import { localPort } from '../config.ts'
import { buildTimelines, formatTimeline, type LogEntry, type Timeline } from '../timeline.ts'
import { isUserKey, USER_KEY_VARIABLE, userKeySecret, userKeyWith } from '../user-key.ts'
import { parseFlags, runCli, usageProblem } from './args.ts'
import type { CliIo } from './dlq.ts'
import { type Env, UsageError } from './target.ts'

/**
 * `npm run trace -- --user <userId> | --message-id <id>`: where is this person's event? Every
 * event of the person (or the one event), in order, with its timeline: received and enqueued by
 * ingest, each delivery attempt (time, Courier's status, outcome, delay), the audience list
 * sync's writes, and its fate (lib/timeline.ts). The answer is read from the functions' own log
 * lines, which name people only by their pseudonymous key (lib/user-key.ts): the command turns the
 * userId into the key with the stage's secret (USER_KEY_SECRET; locally the fixed dev secret).
 *
 * `--local` asks `npm start` (GET /_relay/log on PORT). Otherwise it asks CloudWatch Logs
 * Insights about the three functions' log groups over the last `--since` (StartQuery, then
 * GetQueryResults until the query is Complete):
 * https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_StartQuery.html
 * https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetQueryResults.html
 * Insights bills by the bytes it scans, so the window is bounded (at most MAX_SINCE_SECONDS).
 */

export const USAGE = `usage: npm run trace -- (--user <userId> | --message-id <id>) [--local | --stage <stage>] [--since 24h] [--json]

Shows what happened to a person's events (or one event): received, enqueued, every delivery
attempt with Courier's answer, the audience list sync's writes, and where each one ended.
  --user <userId>       every event of this person (the userId, else the anonymousId; or a u_… key)
  --message-id <id>     one event's timeline
  --local               the relay \`npm start\` runs on this machine (PORT, default 3000)
  --stage <stage>       the deployed stage: CloudWatch Logs Insights over its three functions'
                        log groups, /aws/lambda/segment-courier-relay-<stage>-{ingest,deliver,audiences}
  --region <region>     the stack's region (default: $AWS_REGION)
  --since <n>[m|h|d]    how far back to look on AWS (default 24h, at most 30d)
  --json                the timelines as JSON, one per line
The user key is made with the stage's secret: set ${USER_KEY_VARIABLE} to it on AWS, e.g.
  ${USER_KEY_VARIABLE}=$(aws secretsmanager get-secret-value --secret-id segment-courier-relay-<stage>-user-key --query SecretString --output text)`

export const SERVICE = 'segment-courier-relay'
export const FUNCTIONS = ['ingest', 'deliver', 'audiences'] as const
export const DEFAULT_SINCE_SECONDS = 24 * 3600
export const MAX_SINCE_SECONDS = 30 * 24 * 3600
/** GetQueryResults returns at most this many rows; StartQuery's `limit` is at most 10,000 (API_StartQuery.html). */
export const QUERY_LIMIT = 10_000
/** How often GetQueryResults is asked while the query is Scheduled or Running. */
const POLL_MS = 1_000
/** Insights stops a query after 60 minutes (API_StartQuery.html); the command gives up sooner. */
const MAX_POLLS = 300

/** The three functions' log groups, as Lambda names them: /aws/lambda/<function name>. */
export const logGroupsOf = (stage: string): string[] =>
  FUNCTIONS.map((name) => `/aws/lambda/${SERVICE}-${stage}-${name}`)

/** `30m`, `24h`, `7d` → seconds; a UsageError past MAX_SINCE_SECONDS or malformed. */
export const sinceSeconds = (raw: string | undefined): number => {
  if (raw === undefined) return DEFAULT_SINCE_SECONDS
  const match = /^(\d+)([mhd])$/.exec(raw)
  if (!match) throw new UsageError(`--since must be a number and m, h or d (30m, 24h, 7d), got "${raw}"`)
  const seconds = Number(match[1]) * { m: 60, h: 3600, d: 86_400 }[match[2] as 'm' | 'h' | 'd']
  if (seconds < 60 || seconds > MAX_SINCE_SECONDS) {
    throw new UsageError(`--since must be between 1m and 30d, got "${raw}"`)
  }
  return seconds
}

/**
 * The Insights query for one needle (a user key or a messageId): every line that holds it, oldest
 * first. Every line the timelines need carries the needle in its text (record lines their user and
 * messageId, ingest's and the list sync's their lists of both). Inside the quoted string a
 * backslash and a double quote are escaped with a backslash.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html
 */
export const insightsQuery = (needle: string): string =>
  [
    'fields @timestamp, @message',
    `| filter @message like "${needle.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`,
    '| sort @timestamp asc',
    `| limit ${QUERY_LIMIT}`,
  ].join('\n')

/** One Insights row → the log line it holds: the JSON object in `@message`, or undefined. */
export const entryOfRow = (row: readonly ResultField[]): LogEntry | undefined => {
  const message = row.find((field) => field.field === '@message')?.value
  if (message === undefined) return undefined
  const start = message.indexOf('{')
  if (start === -1) return undefined
  try {
    const value: unknown = JSON.parse(message.slice(start))
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as LogEntry)
      : undefined
  } catch {
    return undefined
  }
}

export interface InsightsOptions {
  readonly logGroupNames: readonly string[]
  readonly needle: string
  readonly startTime: number
  readonly endTime: number
  readonly sleep?: (ms: number) => Promise<void>
}

/** Runs the query and waits for it: Scheduled and Running are waited out, any other end is an error. */
export const queryInsights = async (
  logs: CloudWatchLogsClient,
  options: InsightsOptions,
): Promise<{ entries: LogEntry[]; truncated: boolean }> => {
  const sleep = options.sleep ?? ((ms: number) => new Promise((resolve) => setTimeout(resolve, ms)))
  const { queryId } = await logs.send(
    new StartQueryCommand({
      logGroupNames: [...options.logGroupNames],
      startTime: options.startTime,
      endTime: options.endTime,
      queryString: insightsQuery(options.needle),
      limit: QUERY_LIMIT,
    }),
  )
  if (queryId === undefined) throw new Error('CloudWatch Logs started no query (no queryId)')
  for (let poll = 0; poll < MAX_POLLS; poll++) {
    const answer = await logs.send(new GetQueryResultsCommand({ queryId }))
    const status = answer.status
    if (status === 'Complete') {
      const rows = answer.results ?? []
      const entries = rows.flatMap((row) => {
        const entry = entryOfRow(row)
        return entry === undefined ? [] : [entry]
      })
      return { entries, truncated: rows.length >= QUERY_LIMIT }
    }
    if (status !== 'Scheduled' && status !== 'Running') {
      throw new Error(`the Logs Insights query ${queryId} ended ${status ?? 'without a status'}`)
    }
    await sleep(POLL_MS)
  }
  await logs.send(new StopQueryCommand({ queryId })).catch(() => undefined)
  throw new Error(
    `the Logs Insights query ${queryId} did not finish in ${(MAX_POLLS * POLL_MS) / 1000} s; try a shorter --since`,
  )
}

/** Asks `npm start` for its kept log lines. */
const localEntries = async (
  port: number,
  filter: { user?: string; messageId?: string },
): Promise<LogEntry[]> => {
  const query = new URLSearchParams()
  if (filter.user !== undefined) query.set('user', filter.user)
  if (filter.messageId !== undefined) query.set('messageId', filter.messageId)
  const url = `http://127.0.0.1:${port}/_relay/log?${query}`
  let answer: Response
  try {
    answer = await fetch(url)
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message
    throw new Error(`could not ask ${url}: ${code} (is \`npm start\` running on PORT=${port}?)`)
  }
  if (!answer.ok) throw new Error(`${url} answered ${answer.status}: is that \`npm start\` of this version?`)
  return ((await answer.json()) as { entries: LogEntry[] }).entries
}

/** Pure: what a person reads, one screen for a few events. */
export const formatTrace = (timelines: readonly Timeline[], what: string): string[] => {
  if (timelines.length === 0) return [`no event found for ${what}`]
  const lines = timelines.flatMap((timeline) => [...formatTimeline(timeline), ''])
  const fates = new Map<string, number>()
  for (const timeline of timelines) fates.set(timeline.fate, (fates.get(timeline.fate) ?? 0) + 1)
  lines.push(
    `${timelines.length} event(s) for ${what}: ${[...fates].map(([fate, n]) => `${n} ${fate}`).join(', ')}`,
  )
  return lines
}

export interface TraceIo extends CliIo {
  /** The CloudWatch Logs client (tests give one with a stub's endpoint). */
  readonly logs?: CloudWatchLogsClient
  readonly now?: () => number
  readonly sleep?: (ms: number) => Promise<void>
}

export const main = async (argv: string[], io: TraceIo = {}): Promise<number> => {
  const { env = process.env, out = console.log, err = console.error } = io
  const values = parseFlags(
    argv,
    {
      user: { type: 'string' },
      'message-id': { type: 'string' },
      local: { type: 'boolean' },
      stage: { type: 'string' },
      region: { type: 'string' },
      since: { type: 'string' },
      json: { type: 'boolean' },
    },
    USAGE,
  )
  if (typeof values === 'number') return values
  let since: number
  try {
    if ((values.user === undefined) === (values['message-id'] === undefined)) {
      throw new UsageError('say whose events: --user <userId> or --message-id <id> (one of them)')
    }
    if (values.local && values.stage !== undefined)
      throw new UsageError('--local and --stage exclude each other')
    if (!values.local && values.stage === undefined) {
      throw new UsageError('say where: --local (npm start) or --stage <stage> (CloudWatch Logs)')
    }
    if (values.stage !== undefined && !/^[A-Za-z0-9-]{1,64}$/.test(values.stage)) {
      throw new UsageError(`--stage must be a stage name (letters, digits and -), got "${values.stage}"`)
    }
    since = sinceSeconds(values.since)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    err(usageProblem(error.message, USAGE))
    return 2
  }
  const user =
    values.user === undefined
      ? undefined
      : isUserKey(values.user)
        ? values.user
        : userKeyWith(userKeySecret(env as Env))(values.user)
  const messageId = values['message-id']
  const what = user === undefined ? `messageId ${messageId}` : `user key ${user}`
  let entries: LogEntry[]
  let truncated = false
  if (values.local) {
    entries = await localEntries(localPort(env, 'PORT'), { user, messageId })
  } else {
    if (user !== undefined && !env[USER_KEY_VARIABLE]?.trim() && !isUserKey(values.user ?? '')) {
      err(
        `note: ${USER_KEY_VARIABLE} is not set, so the key is made with the local dev secret and matches nothing deployed; see --help`,
      )
    }
    const region = values.region ?? env.AWS_REGION
    const endpoint = env.AWS_ENDPOINT_URL_CLOUDWATCH_LOGS || env.AWS_ENDPOINT_URL || undefined
    const logs =
      io.logs ??
      new CloudWatchLogsClient({ ...(region ? { region } : {}), ...(endpoint ? { endpoint } : {}) })
    const endTime = Math.floor((io.now?.() ?? Date.now()) / 1000)
    try {
      const answer = await queryInsights(logs, {
        logGroupNames: logGroupsOf(values.stage as string),
        needle: user ?? (messageId as string),
        startTime: endTime - since,
        endTime,
        ...(io.sleep ? { sleep: io.sleep } : {}),
      })
      entries = answer.entries
      truncated = answer.truncated
    } finally {
      if (io.logs === undefined) logs.destroy()
    }
  }
  const timelines = buildTimelines(entries, { user, messageId })
  if (values.json) for (const timeline of timelines) out(JSON.stringify(timeline))
  else for (const line of formatTrace(timelines, what)) out(line)
  if (truncated)
    err(`note: Logs Insights returned its most, ${QUERY_LIMIT} lines; a shorter --since shows the rest`)
  return 0
}

if (import.meta.main) await runCli(main)
