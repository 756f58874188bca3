/**
 * A cheap authenticated call to the configured Courier at start-up, so a token Courier refuses,
 * or a Courier that cannot be reached, is said once in one line instead of surfacing as a stream
 * of retried records. The call is the one Courier's own Segment (Actions) destination makes to
 * test an API key: `POST {base}/debug` with `Authorization: Bearer <key>`
 * (segmentio/action-destinations, packages/destination-actions/src/destinations/courier/index.ts,
 * testAuthentication). Nothing waits for it: the relay runs either way, and events wait in the
 * queue until Courier takes them.
 */

export type CourierCheck =
  | { readonly kind: 'accepted'; readonly status: number }
  | { readonly kind: 'refused'; readonly status: number }
  | { readonly kind: 'unexpected'; readonly status: number }
  | { readonly kind: 'unreachable'; readonly reason: string }

export const DEBUG_PATH = '/debug'

export const checkCourier = async (
  baseUrl: string,
  token: string,
  timeoutMs = 10_000,
): Promise<CourierCheck> => {
  try {
    const answer = await fetch(`${baseUrl.replace(/\/+$/, '')}${DEBUG_PATH}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(timeoutMs),
    })
    await answer.body?.cancel()
    if (answer.ok) return { kind: 'accepted', status: answer.status }
    if (answer.status === 401 || answer.status === 403) return { kind: 'refused', status: answer.status }
    return { kind: 'unexpected', status: answer.status }
  } catch (error) {
    // fetch says "fetch failed"; what happened (ENOTFOUND, ECONNREFUSED, a timeout) is its cause.
    const cause = (error as { cause?: { code?: string; message?: string } }).cause
    const reason =
      (error as Error).name === 'TimeoutError'
        ? `no answer within ${timeoutMs} ms`
        : (cause?.code ?? cause?.message ?? (error as Error).message)
    return { kind: 'unreachable', reason }
  }
}

/** Pure: the one line to print, or undefined when all is well. */
export const courierCheckLine = (check: CourierCheck, label: string): string | undefined => {
  switch (check.kind) {
    case 'accepted':
      return undefined
    case 'refused':
      return `WARNING: Courier (${label}) refused COURIER_AUTH_TOKEN: POST ${DEBUG_PATH} answered ${check.status}. Events wait in the queue, retried slowly, until the token is right.`
    case 'unexpected':
      return `WARNING: could not check COURIER_AUTH_TOKEN: POST ${DEBUG_PATH} at ${label} answered ${check.status}.`
    case 'unreachable':
      return `WARNING: Courier (${label}) cannot be reached: ${check.reason}. Events wait in the queue, retried, until it answers.`
  }
}
