import { buildTimelines, type Timeline, type TimelineFilter } from '../timeline.ts'
import type { RelayCounts, RelayLog } from './relay-log.ts'

/**
 * The status page `npm start` serves at http://127.0.0.1:$PORT/: the pipe's counts, the queues'
 * depths, Courier's current rate per endpoint class and the latest events with their timelines,
 * read from the same log lines `npm run trace` reads (lib/timeline.ts). The page is one HTML
 * document with a small script that asks GET /_relay/status every second and redraws; no
 * framework, nothing loaded from elsewhere. GET /_relay/log?user=&messageId= answers the kept
 * log lines themselves (what `npm run trace -- --local` reads).
 */

export interface QueueDepth {
  /** Messages a receive can get now. */
  readonly ready: number
  /** Received and not yet deleted or made visible again (being delivered, or waiting out a retry delay). */
  readonly inFlight: number
  readonly delayed: number
}

export interface RelayStatus {
  readonly at: string
  readonly counts: Readonly<RelayCounts>
  readonly queues: Readonly<Record<string, QueueDepth>>
  readonly courierRates: Readonly<Record<string, number>>
  /** The latest events, newest first. */
  readonly events: readonly Timeline[]
}

/**
 * What Ctrl-C drops, in one line: every message of the in-memory queues (waiting, waiting out a
 * retry delay, or being delivered), the DLQ, the records whose invocation was cut off (their
 * Courier call may or may not have reached Courier) and webhook requests not yet answered.
 */
export const droppedLine = (
  depths: Readonly<Record<string, QueueDepth>>,
  cutOff: { readonly records: number; readonly requests: number },
): string => {
  const total = (depth: QueueDepth | undefined) =>
    depth === undefined ? 0 : depth.ready + depth.inFlight + depth.delayed
  const queued = total(depths.events) + total(depths.audiences)
  return (
    `dropped: ${queued} queued event(s) (${cutOff.records} of them cut off mid-delivery: Courier may or may not have them), ` +
    `${total(depths.dlq)} in the DLQ, ${cutOff.requests} webhook request(s) unanswered (Segment retries those)`
  )
}

export const LATEST_EVENTS = 25

export const relayStatus = (
  log: RelayLog,
  queues: Readonly<Record<string, QueueDepth>>,
  now: Date = new Date(),
): RelayStatus => ({
  at: now.toISOString(),
  counts: log.counts(),
  queues,
  courierRates: log.courierRates(),
  events: buildTimelines(log.entries()).slice(-LATEST_EVENTS).reverse(),
})

/** The kept log lines an operator asked for (all of them without a filter). */
export const logEntries = (log: RelayLog, filter: TimelineFilter) => {
  if (filter.user === undefined && filter.messageId === undefined) return log.entries()
  const ids = new Set(buildTimelines(log.entries(), filter).map((timeline) => timeline.messageId))
  return log.entries().filter((entry) => {
    const one = entry.messageId
    const many = Array.isArray(entry.messageIds) ? (entry.messageIds as unknown[]) : []
    const rejected = Array.isArray(entry.rejected) ? (entry.rejected as { messageId?: unknown }[]) : []
    return (
      (typeof one === 'string' && ids.has(one)) ||
      many.some((id) => typeof id === 'string' && ids.has(id)) ||
      rejected.some((r) => typeof r?.messageId === 'string' && ids.has(r.messageId))
    )
  })
}

export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>segment-courier-relay · local status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
  h1 { font-size: 1.2rem; margin: 0 0 .2rem; }
  h2 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
  .muted { color: #777; }
  .cards { display: flex; flex-wrap: wrap; gap: .6rem; }
  .card { border: 1px solid #ddd; border-radius: 6px; padding: .4rem .8rem; min-width: 7rem; }
  .card b { display: block; font-size: 1.4rem; }
  table { border-collapse: collapse; }
  td, th { text-align: left; padding: .15rem .8rem .15rem 0; vertical-align: top; }
  .event { border-top: 1px solid #eee; padding: .4rem 0; }
  .fate-delivered { color: #176d2c; } .fate-dead-lettered, .fate-rejected { color: #b3261e; }
  .fate-waiting { color: #a15c00; }
  code, .steps { font-family: ui-monospace, monospace; font-size: 12.5px; }
  .steps { margin: .2rem 0 0 1rem; white-space: pre-wrap; }
</style>
</head>
<body>
<h1>segment-courier-relay <span class="muted">· local</span></h1>
<div class="muted">Refreshes every second. Updated <span id="updated">never</span>. Same data as <code>npm run trace -- --local</code>.</div>
<h2>Events</h2>
<div class="cards" id="counts"></div>
<h2>Queues</h2>
<table id="queues"><thead><tr><th>queue</th><th>ready</th><th>in flight</th><th>delayed</th></tr></thead><tbody></tbody></table>
<h2>Courier's current rate per endpoint class</h2>
<table id="rates"><tbody></tbody></table>
<h2>Latest events</h2>
<div id="events"><span class="muted">none yet</span></div>
<script>
const LABELS = { received: 'received', queued: 'queued', delivered: 'delivered', retried: 'retried', deadLettered: 'dead-lettered', skipped: 'skipped', rejected: 'rejected', erased: 'erased' }
const el = (tag, { dataset = {}, ...props } = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props)
  Object.assign(node.dataset, dataset)
  for (const child of children) node.append(child)
  return node
}
const draw = (status) => {
  document.getElementById('updated').textContent = status.at.replace('T', ' ').replace('Z', ' UTC')
  document.getElementById('counts').replaceChildren(...Object.entries(LABELS).map(([key, label]) =>
    el('div', { className: 'card', id: 'count-' + key }, el('b', { textContent: String(status.counts[key] ?? 0) }), label)))
  document.querySelector('#queues tbody').replaceChildren(...Object.entries(status.queues).map(([name, q]) =>
    el('tr', {}, el('td', { textContent: name }), el('td', { textContent: String(q.ready) }), el('td', { textContent: String(q.inFlight) }), el('td', { textContent: String(q.delayed) }))))
  const rates = Object.entries(status.courierRates)
  // A class is paced only once Courier pushed back (or under a known limit): until then it has no rate.
  document.querySelector('#rates tbody').replaceChildren(...(rates.length === 0
    ? [el('tr', {}, el('td', { className: 'muted', textContent: (status.counts.delivered ?? 0) > 0 ? 'not paced: Courier has not pushed back' : 'no delivery yet' }))]
    : rates.map(([name, rps]) => el('tr', {}, el('td', { textContent: name }), el('td', { textContent: rps.toFixed(1) + ' requests/s' })))))
  const events = document.getElementById('events')
  if (status.events.length === 0) return events.replaceChildren(el('span', { className: 'muted', textContent: 'none yet' }))
  events.replaceChildren(...status.events.map((t) => el('div', { className: 'event', dataset: { messageId: t.messageId } },
    el('div', {}, el('code', { textContent: t.messageId }), ' ' + (t.type ?? '?') + ' · user ', el('code', { textContent: t.user ?? '?' }), ' → ',
      el('b', { className: 'fate fate-' + t.fate, textContent: t.fate + (t.fateReason ? ': ' + t.fateReason : '') })),
    el('div', { className: 'steps', textContent: t.steps.map((s) => s.at.slice(11, 23) + '  ' + s.by.padEnd(9) + ' ' + s.what).join('\\n') }))))
}
const refresh = async () => {
  try {
    const answer = await fetch('/_relay/status', { cache: 'no-store' })
    if (answer.ok) draw(await answer.json())
  } catch {
    document.getElementById('updated').textContent = 'the relay does not answer (stopped?)'
  }
  setTimeout(refresh, 1000)
}
refresh()
</script>
</body>
</html>
`
