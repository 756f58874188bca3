/**
 * An event's story told from the relay's own log lines: received and enqueued by ingest, each
 * delivery attempt (Courier's status, the outcome, the delay before the next one), the audience
 * list sync's writes, and where it ended. The same reading serves `npm run trace` (local and
 * CloudWatch Logs Insights) and the status page of `npm start`, so both tell one story from one
 * format: the JSON lines the functions write (lib/telemetry.ts), which carry messageIds and
 * pseudonymous user keys (lib/user-key.ts), never ids.
 *
 * Pure: log entries in, timelines out.
 */

/** One parsed log line (a Powertools Logger JSON object). */
export type LogEntry = Readonly<Record<string, unknown>>

export interface Step {
  /** ISO 8601, as the log line's `timestamp`. */
  readonly at: string
  /** The function that wrote the line: ingest, deliver or audiences. */
  readonly by: string
  /** One line a person reads: what happened. */
  readonly what: string
  readonly status?: number
  readonly outcome?: string
  readonly attempt?: number
  readonly delaySeconds?: number
  readonly reason?: string
}

/** Where an event stands: its last word, or still waiting for a next attempt. */
export type Fate =
  | 'delivered'
  | 'skipped'
  | 'erased'
  | 'dead-lettered'
  | 'rejected'
  | 'waiting'
  | 'queued'
  | 'unknown'

export interface Timeline {
  readonly messageId: string
  readonly user: string | undefined
  readonly type: string | undefined
  readonly steps: readonly Step[]
  readonly fate: Fate
  /** Why, for dead letters and rejections; what it waits for otherwise. */
  readonly fateReason?: string
  /** The time of the first step (ISO). */
  readonly firstAt: string
}

const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined)
const num = (value: unknown): number | undefined => (typeof value === 'number' ? value : undefined)
const texts = (value: unknown): (string | undefined)[] =>
  Array.isArray(value) ? value.map((one) => (typeof one === 'string' ? one : undefined)) : []

const functionOf = (entry: LogEntry): string => text(entry.relayFunction) ?? text(entry.function_name) ?? '?'
const timeOf = (entry: LogEntry): string => text(entry.timestamp) ?? ''

/** Every event a log line speaks of, with the user key the line gives each (if any). */
export const eventsOf = (entry: LogEntry): { messageId: string; user: string | undefined }[] => {
  const single = text(entry.messageId)
  if (single !== undefined) return [{ messageId: single, user: text(entry.user) }]
  const ids = texts(entry.messageIds)
  const users = texts(entry.users)
  const found = ids.flatMap((id, i) => (id === undefined ? [] : [{ messageId: id, user: users[i] }]))
  const rejected = Array.isArray(entry.rejected) ? (entry.rejected as unknown[]) : []
  for (const one of rejected) {
    const id = text((one as { messageId?: unknown } | null)?.messageId)
    if (id !== undefined) found.push({ messageId: id, user: text((one as { user?: unknown }).user) })
  }
  return found
}

const FINAL: Readonly<Record<string, Fate>> = {
  delivered: 'delivered',
  skipped: 'skipped',
  erased: 'erased',
  'dead-lettered': 'dead-lettered',
}

const delayText = (seconds: number | undefined) =>
  seconds === undefined
    ? ''
    : `, next attempt in ${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`

/** The step one line adds to one event's timeline, if it adds one. */
const stepOf = (entry: LogEntry, messageId: string): Step | undefined => {
  const base = { at: timeOf(entry), by: functionOf(entry) }
  const message = text(entry.message)
  if (message === 'events enqueued') {
    const shape = text(entry.shape) ?? '?'
    const received = num(entry.received) ?? 0
    return {
      ...base,
      what: `received (${shape} request of ${received} event${received === 1 ? '' : 's'}) and enqueued`,
    }
  }
  if (message === 'events rejected') {
    const rejection = (entry.rejected as { messageId?: unknown; error?: unknown }[]).find(
      (one) => one?.messageId === messageId,
    )
    const reason = text(rejection?.error) ?? '?'
    return { ...base, what: `rejected by ingest, kept in the DLQ: ${reason}`, outcome: 'rejected', reason }
  }
  if (message === 'record') {
    const status = num(entry.status)
    const outcome = text(entry.outcome) ?? '?'
    const attempt = num(entry.attempt)
    const delaySeconds = num(entry.delaySeconds)
    const reason = text(entry.reason)
    const retrying = FINAL[outcome] === undefined
    return {
      ...base,
      what: `attempt ${attempt ?? '?'}: ${status === undefined ? 'no answer' : `Courier ${status}`} → ${outcome}${retrying ? delayText(delaySeconds) : ''}${reason === undefined ? '' : ` (${reason})`}`,
      outcome,
      ...(status === undefined ? {} : { status }),
      ...(attempt === undefined ? {} : { attempt }),
      ...(delaySeconds === undefined ? {} : { delaySeconds }),
      ...(reason === undefined ? {} : { reason }),
    }
  }
  if (message === 'list write') {
    const status = num(entry.status)
    const outcome = text(entry.outcome) ?? '?'
    const members = num(entry.members) ?? 0
    return {
      ...base,
      what: `list sync: ${text(entry.method) ?? '?'} ${text(entry.path) ?? '?'} (${members} member${members === 1 ? '' : 's'}) → ${status ?? 'no answer'} ${outcome}${delayText(num(entry.delaySeconds))}`,
      outcome: `list ${outcome}`,
      ...(status === undefined ? {} : { status }),
    }
  }
  return undefined
}

/** The fate the steps add up to: the last final outcome, else waiting for the attempt announced. */
const fateOf = (steps: readonly Step[]): { fate: Fate; fateReason?: string } => {
  for (const step of [...steps].reverse()) {
    const outcome = step.outcome
    if (outcome === undefined || outcome.startsWith('list ')) continue
    if (outcome === 'rejected') return { fate: 'rejected', fateReason: step.reason ?? '' }
    const final = FINAL[outcome]
    if (final !== undefined) {
      return final === 'dead-lettered' || final === 'skipped'
        ? { fate: final, fateReason: step.reason ?? '' }
        : { fate: final }
    }
    return { fate: 'waiting', fateReason: `${outcome}${delayText(step.delaySeconds)}` }
  }
  return steps.length > 0 ? { fate: 'queued' } : { fate: 'unknown' }
}

export interface TimelineFilter {
  /** A user key (lib/user-key.ts): every event of that person. */
  readonly user?: string | undefined
  readonly messageId?: string | undefined
}

/**
 * The timelines of the events the filter names, oldest first, each with its steps in time order.
 * A user's events are found by their key in ingest's and deliver's lines; every line naming one
 * of those messageIds then joins its timeline (a list write for many members included).
 */
export const buildTimelines = (entries: readonly LogEntry[], filter: TimelineFilter = {}): Timeline[] => {
  const wanted = new Set<string>()
  const users = new Map<string, string>()
  const types = new Map<string, string>()
  for (const entry of entries) {
    for (const { messageId, user } of eventsOf(entry)) {
      if (user !== undefined && !users.has(messageId)) users.set(messageId, user)
      const type = text(entry.type)
      if (type !== undefined && !types.has(messageId)) types.set(messageId, type)
      const matches =
        (filter.messageId === undefined || filter.messageId === messageId) &&
        (filter.user === undefined || filter.user === user)
      if (matches) wanted.add(messageId)
    }
  }
  const steps = new Map<string, Step[]>()
  for (const entry of entries) {
    for (const { messageId } of eventsOf(entry)) {
      if (!wanted.has(messageId)) continue
      const step = stepOf(entry, messageId)
      if (step === undefined) continue
      const list = steps.get(messageId)
      if (list === undefined) steps.set(messageId, [step])
      else list.push(step)
    }
  }
  const timelines: Timeline[] = []
  for (const [messageId, list] of steps) {
    list.sort((a, b) => a.at.localeCompare(b.at))
    timelines.push({
      messageId,
      user: users.get(messageId),
      type: types.get(messageId),
      steps: list,
      ...fateOf(list),
      firstAt: list[0]?.at ?? '',
    })
  }
  return timelines.sort((a, b) => a.firstAt.localeCompare(b.firstAt))
}

/** Pure: one timeline as a few lines a person reads (times in UTC, to the millisecond). */
export const formatTimeline = (timeline: Timeline): string[] => {
  const head = `${timeline.messageId}  ${timeline.type ?? '?'}  user ${timeline.user ?? '?'}  → ${timeline.fate}${timeline.fateReason ? `: ${timeline.fateReason}` : ''}`
  const steps = timeline.steps.map(
    (step) => `  ${step.at.replace('T', ' ').replace('Z', '')}  ${step.by.padEnd(9)} ${step.what}`,
  )
  return [head, ...steps]
}
