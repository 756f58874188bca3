import { COURIER_BASE_URLS, type CourierRegion } from '../config.ts'

/**
 * One cheap authenticated call to Courier with the token the stage will deploy, before deploying:
 * a wrong token otherwise shows up hours later as a backlog alarm (deliver keeps retrying 401s).
 *
 * The call is the one Courier's own Segment (Actions) destination makes to test its credentials:
 * `POST {base}/debug` with `Authorization: Bearer <key>`, base https://api.courier.com or
 * https://api.eu.courier.com.
 * https://github.com/segmentio/action-destinations/blob/main/packages/destination-actions/src/destinations/courier/index.ts
 * 401 and 403 are Courier refusing the credentials (https://www.courier.com/docs/reference/authorization);
 * anything else that is not a 2xx, a timeout or a network error says nothing about the token.
 */

export type CourierTokenVerdict = 'accepted' | 'refused' | 'unreachable'

export interface CourierTokenCheck {
  readonly verdict: CourierTokenVerdict
  /** The one line the preflight prints. Never holds the token. */
  readonly line: string
}

/** Pure: the base URL deliver will use (COURIER_BASE_URL, else the region's). */
export const courierBaseUrl = (region: string | undefined, override: string | undefined): string =>
  (
    override?.trim() ||
    COURIER_BASE_URLS[(region?.trim() || 'us') as CourierRegion] ||
    COURIER_BASE_URLS.us
  ).replace(/\/+$/, '')

/** Pure: the verdict on an HTTP status. */
export const verdictOf = (status: number): CourierTokenVerdict =>
  status >= 200 && status < 300 ? 'accepted' : status === 401 || status === 403 ? 'refused' : 'unreachable'

/**
 * Asks Courier once. Never throws: a network error or a timeout (`timeoutMs`, default 10 s) is
 * `unreachable`.
 */
export const checkCourierToken = async (
  baseUrl: string,
  token: string,
  options: { readonly timeoutMs?: number; readonly fetch?: typeof fetch } = {},
): Promise<CourierTokenCheck> => {
  const url = `${baseUrl}/debug`
  const doFetch = options.fetch ?? fetch
  try {
    const response = await doFetch(url, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    })
    // The body is not needed; read it so the connection is released.
    await response.arrayBuffer().catch(() => undefined)
    const verdict = verdictOf(response.status)
    const said = {
      accepted: 'accepted the deployed token',
      refused: 'refused the deployed token',
      unreachable: 'could not say whether it takes the deployed token',
    }[verdict]
    return { verdict, line: `Courier ${said} (POST ${url}: HTTP ${response.status})` }
  } catch (error) {
    const { name, message, cause } = error as Error & { cause?: { code?: string } }
    const why = name === 'TimeoutError' ? 'no answer in time' : (cause?.code ?? message)
    return { verdict: 'unreachable', line: `Courier is unreachable (POST ${url}: ${why})` }
  }
}
