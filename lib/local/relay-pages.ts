import { isUserKey, userKey } from '../user-key.ts'
import type { RelayLog } from './relay-log.ts'
import type { PageAnswer } from './server.ts'
import { logEntries, type QueueDepth, relayStatus, STATUS_PAGE } from './status-page.ts'

/**
 * The local relay's own GET routes on PORT, beside POST /segment:
 * - `/`: the status page (status-page.ts);
 * - `/_relay/status`: what the page draws, as JSON;
 * - `/_relay/log[?user=<userId or user key>][&messageId=<id>]`: the kept log lines, `{entries}`,
 *   all of them or those of one person's or one event's timelines: what `npm run trace -- --local` reads.
 */
export const relayPages = (
  log: RelayLog,
  depths: Readonly<Record<string, QueueDepth>>,
  url: URL,
): PageAnswer | undefined => {
  const json = (body: unknown): PageAnswer => ({
    status: 200,
    contentType: 'application/json',
    body: JSON.stringify(body),
  })
  if (url.pathname === '/') return { status: 200, contentType: 'text/html; charset=utf-8', body: STATUS_PAGE }
  if (url.pathname === '/_relay/status') return json(relayStatus(log, depths))
  if (url.pathname === '/_relay/log') {
    const user = url.searchParams.get('user') ?? undefined
    const messageId = url.searchParams.get('messageId') ?? undefined
    const key = user === undefined || isUserKey(user) ? user : userKey(user)
    return json({ entries: logEntries(log, { user: key, messageId }) })
  }
  return undefined
}
