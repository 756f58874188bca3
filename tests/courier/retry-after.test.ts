import { describe, expect, it } from 'vitest'
import { parseHttpDate, parseRetryAfter } from '../../lib/courier/retry-after.ts'

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0) // Sat, 28 Nov 2026 12:00:00 GMT

const headers = (entries: Record<string, string>) => new Headers(entries)

describe('parseRetryAfter', () => {
  it.each([
    ['delta-seconds', { 'retry-after': '120' }, 120],
    ['zero', { 'retry-after': '0' }, 0],
    ['fractional seconds', { 'retry-after': '1.5' }, 1.5],
    ['surrounding whitespace', { 'retry-after': ' 30 ' }, 30],
    ['retry-after-ms', { 'retry-after-ms': '1500' }, 1.5],
    ['fractional retry-after-ms', { 'retry-after-ms': '250.5' }, 0.2505],
    ['retry-after-ms over retry-after', { 'retry-after-ms': '2000', 'retry-after': '60' }, 2],
    ['retry-after when retry-after-ms is invalid', { 'retry-after-ms': 'soon', 'retry-after': '60' }, 60],
    ['an IMF-fixdate 90 s ahead', { 'retry-after': 'Sat, 28 Nov 2026 12:01:30 GMT' }, 90],
    ['an RFC 850 date 60 s ahead', { 'retry-after': 'Saturday, 28-Nov-26 12:01:00 GMT' }, 60],
    ['an asctime date 45 s ahead', { 'retry-after': 'Sat Nov 28 12:00:45 2026' }, 45],
    ['a date in the past, as 0', { 'retry-after': 'Fri, 27 Nov 2026 12:00:00 GMT' }, 0],
    ['a huge delay, uncapped (capping is policy)', { 'retry-after': '999999' }, 999_999],
  ])('reads %s', (_name, entries, expected) => {
    // Prepare
    const given = headers(entries)

    // Act
    const seconds = parseRetryAfter(given, NOW)

    // Assess
    expect(seconds).toBeCloseTo(expected, 6)
  })

  it.each([
    ['no header', {}],
    ['empty', { 'retry-after': '' }],
    ['negative seconds', { 'retry-after': '-5' }],
    ['a number in exponent form', { 'retry-after': '1e3' }],
    ['hex', { 'retry-after': '0x10' }],
    ['words', { 'retry-after': 'later' }],
    ['a bare digit Date.parse would take as a year', { 'retry-after': '2.' }],
    ['an ISO date (not an HTTP-date)', { 'retry-after': '2026-11-28T12:01:00Z' }],
    ['an impossible day', { 'retry-after': 'Mon, 31 Feb 2026 12:00:00 GMT' }],
    ['an impossible hour', { 'retry-after': 'Sat, 28 Nov 2026 25:00:00 GMT' }],
    ['a date without GMT', { 'retry-after': 'Sat, 28 Nov 2026 12:01:30' }],
    ['negative retry-after-ms alone', { 'retry-after-ms': '-100' }],
  ])('gives undefined for %s', (_name, entries) => {
    expect(parseRetryAfter(headers(entries), NOW)).toBeUndefined()
  })

  it('uses the current time by default', () => {
    // Prepare: a date 10 minutes ahead of the real clock
    const ahead = new Date(Date.now() + 600_000).toUTCString()

    // Act
    const seconds = parseRetryAfter(headers({ 'retry-after': ahead }))

    // Assess: toUTCString drops milliseconds, hence the tolerance
    expect(seconds).toBeGreaterThan(598)
    expect(seconds).toBeLessThanOrEqual(600)
  })
})

describe('parseHttpDate', () => {
  it('reads the three forms of RFC 9110 as the same instant', () => {
    const expected = Date.UTC(1994, 10, 6, 8, 49, 37)

    const forms = [
      'Sun, 06 Nov 1994 08:49:37 GMT',
      'Sunday, 06-Nov-94 08:49:37 GMT',
      'Sun Nov  6 08:49:37 1994',
    ].map((form) => parseHttpDate(form, NOW))

    expect(forms).toEqual([expected, expected, expected])
  })

  it('puts a two-digit year more than 50 years ahead in the past century', () => {
    // Prepare: in 2026, '80' would be 2080 (54 years ahead), so it is 1980; '70' is 2070
    const eighty = parseHttpDate('Monday, 01-Jan-80 00:00:00 GMT', NOW)
    const seventy = parseHttpDate('Tuesday, 01-Jan-70 00:00:00 GMT', NOW)

    expect(eighty).toBe(Date.UTC(1980, 0, 1))
    expect(seventy).toBe(Date.UTC(2070, 0, 1))
  })
})
