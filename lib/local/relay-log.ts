import type { LogEntry } from '../timeline.ts'

/**
 * The local relay's CloudWatch: what the functions write to stdout, as Lambda's runtime would
 * hand it to CloudWatch Logs. Each JSON line of the relay's logger is kept (the last `capacity`
 * of them) for `npm run trace -- --local` and the status page, counted, and shown in the terminal
 * as one short line instead of a screen-wide JSON object; the embedded metric format blobs the
 * metrics write (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
 * are read for Courier's rate per endpoint class and not printed. Anything else passes through.
 */

export interface RelayCounts {
  received: number
  queued: number
  rejected: number
  delivered: number
  skipped: number
  retried: number
  deadLettered: number
  erased: number
}

export interface RelayLog {
  /** Takes one line the process wrote; returns what to print instead (undefined: nothing). */
  readonly take: (line: string) => string | undefined
  readonly entries: () => readonly LogEntry[]
  readonly counts: () => Readonly<RelayCounts>
  /** The latest CourierRate each endpoint class was paced at (requests/s). */
  readonly courierRates: () => Readonly<Record<string, number>>
}

const DEFAULT_CAPACITY = 20_000

const short = (entry: LogEntry): string => {
  const time = typeof entry.timestamp === 'string' ? entry.timestamp.slice(11, 23) : ''
  const level = entry.level === 'INFO' ? '' : ` ${String(entry.level)}`
  const fields = [
    'messageId',
    'user',
    'type',
    'outcome',
    'status',
    'attempt',
    'delaySeconds',
    'shape',
    'received',
    'accepted',
    'rejected',
    'method',
    'path',
    'members',
    'reason',
    'endpointClass',
    'fromRps',
    'toRps',
  ]
    .filter((name) => entry[name] !== undefined && entry[name] !== null)
    .map((name) => {
      const value = entry[name]
      return `${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`
    })
  const error = entry.error === undefined ? '' : ` error=${JSON.stringify(entry.error)}`
  return `${time} ${String(entry.relayFunction ?? '?')}${level} ${String(entry.message)} ${fields.join(' ')}${error}`.trimEnd()
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

export const createRelayLog = (capacity = DEFAULT_CAPACITY): RelayLog => {
  const kept: LogEntry[] = []
  const counts: RelayCounts = {
    received: 0,
    queued: 0,
    rejected: 0,
    delivered: 0,
    skipped: 0,
    retried: 0,
    deadLettered: 0,
    erased: 0,
  }
  const rates: Record<string, number> = {}
  const count = (entry: LogEntry) => {
    const n = (value: unknown) => (typeof value === 'number' ? value : 0)
    if (entry.message === 'events enqueued') {
      counts.received += n(entry.received)
      counts.queued += n(entry.accepted)
      counts.rejected += n(entry.rejected)
      counts.deadLettered += n(entry.rejected)
    }
    if (entry.message === 'record') {
      const outcome = entry.outcome
      if (outcome === 'delivered') counts.delivered++
      else if (outcome === 'skipped') counts.skipped++
      else if (outcome === 'dead-lettered') counts.deadLettered++
      else if (outcome === 'erased') counts.erased++
      else counts.retried++
    }
  }
  return {
    take: (line) => {
      const trimmed = line.trim()
      // Powertools Metrics' notice after an invocation that added none: noise in a terminal.
      if (trimmed.startsWith('No application metrics to publish')) return undefined
      if (!trimmed.startsWith('{')) return line
      let value: unknown
      try {
        value = JSON.parse(trimmed)
      } catch {
        return line
      }
      if (!isObject(value)) return line
      if (isObject(value._aws)) {
        if (typeof value.CourierRate === 'number' && typeof value.endpointClass === 'string') {
          rates[value.endpointClass] = value.CourierRate
        }
        return undefined
      }
      if (value.relayFunction === undefined) return line
      kept.push(value)
      if (kept.length > capacity) kept.splice(0, kept.length - capacity)
      count(value)
      return short(value)
    },
    entries: () => kept,
    counts: () => ({ ...counts }),
    courierRates: () => ({ ...rates }),
  }
}

/**
 * Routes every line this process writes to stdout and stderr through `log.take`, as Lambda's
 * runtime collects a function's output (the logger writes warnings and errors to stderr).
 * Returns a function that puts both streams back.
 */
export const tapOutput = (log: RelayLog): (() => void) => {
  const restores = [process.stdout, process.stderr].map((stream) => {
    const write = stream.write.bind(stream)
    let pending = ''
    const tapped = (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
      pending += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      const out = lines.flatMap((line) => {
        const shown = log.take(line)
        return shown === undefined ? [] : [`${shown}\n`]
      })
      const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined
      if (out.length === 0) {
        callback?.()
        return true
      }
      return write(out.join(''), callback)
    }
    stream.write = tapped as typeof stream.write
    return () => {
      stream.write = write
    }
  })
  return () => {
    for (const restore of restores) restore()
  }
}
