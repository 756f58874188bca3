/**
 * How long a server asks us to wait, in seconds, from its response headers. Courier documents
 * no Retry-After, but its SDKs obey `retry-after-ms` and `Retry-After`
 * (https://github.com/trycourier/courier-node/blob/main/src/client.ts), so one is honoured when
 * present, in any of the forms servers use:
 * - `retry-after-ms: 1500` — milliseconds, a de-facto header (OpenAI, Azure, Anthropic) that is more
 *   precise than Retry-After, so it wins when both are valid;
 * - `Retry-After: 120` — delta-seconds (RFC 9110 §10.2.3);
 * - `Retry-After: Wed, 21 Oct 2026 07:28:00 GMT` — an HTTP-date, in any of the three forms a
 *   recipient must accept (RFC 9110 §5.6.7).
 * https://www.rfc-editor.org/rfc/rfc9110#field.retry-after
 *
 * Anything else is "no advice" (undefined) rather than a guess: the caller then falls back to
 * its own backoff. A date in the past means "now" (0). No upper bound is applied here; capping
 * a hostile or mistaken value is the caller's policy (`config.retry.retryAfterMaxSeconds`).
 */

/** A non-negative decimal. Stricter than Number(), which also takes '', '0x1f', '1e3' and ' '. */
const DECIMAL = /^\d+(?:\.\d+)?$/

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']

/**
 * The three HTTP-date forms, with named parts. Date.parse is not used: it accepts far too much
 * ('2', '-5', local times) and would turn garbage into a wait.
 */
const HTTP_DATE_FORMATS = [
  // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
  /^[a-z]{3}, (?<day>\d{2}) (?<month>[a-z]{3}) (?<year>\d{4}) (?<hour>\d{2}):(?<minute>\d{2}):(?<second>\d{2}) GMT$/i,
  // obsolete RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
  /^[a-z]{6,9}, (?<day>\d{2})-(?<month>[a-z]{3})-(?<year>\d{2}) (?<hour>\d{2}):(?<minute>\d{2}):(?<second>\d{2}) GMT$/i,
  // obsolete asctime: `Sun Nov  6 08:49:37 1994` (day padded with a space; always UTC)
  /^[a-z]{3} (?<month>[a-z]{3}) (?<day>[ \d]\d) (?<hour>\d{2}):(?<minute>\d{2}):(?<second>\d{2}) (?<year>\d{4})$/i,
] as const

type DateParts = Readonly<Record<string, string | undefined>>

const toEpochMillis = (parts: DateParts, now: number): number | undefined => {
  const month = MONTHS.indexOf(parts.month?.toLowerCase() ?? '')
  const day = Number(parts.day)
  const [hour, minute, second] = [Number(parts.hour), Number(parts.minute), Number(parts.second)]
  if (month < 0 || hour > 23 || minute > 59 || second > 60) return undefined
  let year = Number(parts.year)
  if (parts.year?.length === 2) {
    // RFC 9110 §5.6.7: a two-digit year that looks more than 50 years ahead is the most recent
    // past year with the same last two digits.
    const thisYear = new Date(now).getUTCFullYear()
    year += thisYear - (thisYear % 100)
    if (year > thisYear + 50) year -= 100
  }
  // A leap second (60) is read as 59: one second does not matter for a wait.
  const millis = Date.UTC(year, month, day, hour, minute, Math.min(second, 59))
  // Date.UTC rolls 31 Feb over into March; a date that does not exist is not a date.
  return new Date(millis).getUTCDate() === day ? millis : undefined
}

/** An HTTP-date (any of the three forms) as epoch milliseconds, or undefined. */
export const parseHttpDate = (value: string, now: number = Date.now()): number | undefined => {
  const text = value.trim()
  for (const format of HTTP_DATE_FORMATS) {
    const parts = format.exec(text)?.groups
    if (parts !== undefined) return toEpochMillis(parts, now)
  }
  return undefined
}

const decimal = (value: string | null): number | undefined => {
  const text = value?.trim()
  return text !== undefined && DECIMAL.test(text) ? Number(text) : undefined
}

/** Seconds to wait (≥ 0, possibly fractional), or undefined when the headers give no valid advice. */
export const parseRetryAfter = (headers: Headers, now: number = Date.now()): number | undefined => {
  const milliseconds = decimal(headers.get('retry-after-ms'))
  if (milliseconds !== undefined) return milliseconds / 1000

  const retryAfter = headers.get('retry-after')
  if (retryAfter === null) return undefined
  const seconds = decimal(retryAfter)
  if (seconds !== undefined) return seconds
  const date = parseHttpDate(retryAfter, now)
  return date === undefined ? undefined : Math.max(0, (date - now) / 1000)
}
