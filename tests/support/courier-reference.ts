import type { ServerResponse } from 'node:http'
import type { RecordedRequest, StubHandler } from './http-stub.ts'

/**
 * A few of Courier's endpoints with state, answering as Courier's API reference says, for the
 * relay's multi-call paths (https://www.courier.com/docs/reference/): tenants (`GET` 200 or 404,
 * `PUT` creates or replaces the whole tenant and answers it back), tenant memberships, profiles and
 * list subscriptions, with deletes answering 204. `failNext` makes the next matching call fail once,
 * with the status and headers given, before it touches any state. List writes (POST to a list's
 * subscriptions, PUT to lists) are limited to `listWritesPerMinute` in any 60 s (Courier's published
 * 20, https://www.courier.com/docs/reference/rate-limits), the excess answered 429.
 */

export interface CourierState {
  readonly tenants: Map<string, Record<string, unknown>>
  /** `${userId} ${tenantId}` */
  readonly memberships: Set<string>
  readonly profiles: Map<string, Record<string, unknown>>
  /** `${listId} ${userId}` */
  readonly subscriptions: Set<string>
}

export interface CourierReference {
  readonly state: CourierState
  /** Every list write Courier took or refused, with its time and status. */
  readonly listWrites: { readonly at: number; readonly status: number; readonly recipients: number }[]
  readonly handler: StubHandler
  failNext(method: string, path: string, status: number, headers?: Record<string, string>): void
}

const send = (
  response: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
) => {
  response.writeHead(
    status,
    body === undefined ? headers : { 'content-type': 'application/json', ...headers },
  )
  response.end(body === undefined ? '' : JSON.stringify(body))
}

const notFound = (response: ServerResponse) =>
  send(response, 404, { message: 'Not Found', type: 'invalid_request_error' })

export const courierReference = (options: { listWritesPerMinute?: number } = {}): CourierReference => {
  const limit = options.listWritesPerMinute ?? 20
  const listWrites: { at: number; status: number; recipients: number }[] = []
  const state: CourierState = {
    tenants: new Map(),
    memberships: new Set(),
    profiles: new Map(),
    subscriptions: new Set(),
  }
  const failures: { method: string; path: string; status: number; headers: Record<string, string> }[] = []

  const handler: StubHandler = (request: RecordedRequest, response) => {
    const path = decodeURI(request.url)
    const failing = failures.findIndex((f) => f.method === request.method && f.path === path)
    if (failing >= 0) {
      const [failure] = failures.splice(failing, 1)
      const type = failure!.status === 409 ? 'conflict' : 'api_error'
      send(response, failure!.status, { message: `failed once (${failure!.status})`, type }, failure!.headers)
      return
    }
    const body = request.body === '' ? undefined : (JSON.parse(request.body) as Record<string, unknown>)
    const parts = request.url.split('/').map((part) => decodeURIComponent(part))
    const route = `${request.method} /${parts[1]}${parts.length > 3 ? `/:/${parts[3]}` : ''}${parts.length > 4 ? '/:' : ''}`
    const [, , a, , b] = parts as [string, string, string, string?, string?]
    const isListWrite =
      (request.method === 'POST' && route === 'POST /lists/:/subscriptions') ||
      (request.method === 'PUT' && parts[1] === 'lists')
    if (isListWrite) {
      const now = Date.now()
      const recipients = Array.isArray(body?.recipients) ? body.recipients.length : 1
      const recent = listWrites.filter((w) => w.status !== 429 && now - w.at < 60_000).length
      if (recent >= limit) {
        listWrites.push({ at: now, status: 429, recipients })
        return send(response, 429, { message: 'Rate limit exceeded', type: 'rate_limit_error' })
      }
      listWrites.push({ at: now, status: 204, recipients })
    }
    switch (route) {
      case 'POST /inbound':
        return send(response, 202, { messageId: `1-${Math.random().toString(16).slice(2)}` })
      case 'GET /tenants': {
        const tenant = state.tenants.get(a)
        return tenant === undefined ? notFound(response) : send(response, 200, { id: a, ...tenant })
      }
      case 'PUT /tenants':
        if (typeof body?.name !== 'string') {
          return send(response, 400, { message: 'name is required', type: 'invalid_request_error' })
        }
        state.tenants.set(a, body)
        return send(response, 200, { id: a, ...body })
      case 'PUT /users/:/tenants/:':
        state.memberships.add(`${a} ${b}`)
        return send(response, 204)
      case 'DELETE /users/:/tenants':
        for (const key of state.memberships) if (key.startsWith(`${a} `)) state.memberships.delete(key)
        return send(response, 204)
      case 'DELETE /profiles':
        state.profiles.delete(a)
        return send(response, 204)
      case 'DELETE /profiles/:/lists':
        for (const key of state.subscriptions) if (key.endsWith(` ${a}`)) state.subscriptions.delete(key)
        return send(response, 200, { status: 'SUCCESS' })
      case 'POST /lists/:/subscriptions': {
        const recipients = (body?.recipients ?? []) as { recipientId: string }[]
        for (const { recipientId } of recipients) state.subscriptions.add(`${a} ${recipientId}`)
        return send(response, 204)
      }
      case 'PUT /lists/:/subscriptions/:':
        state.subscriptions.add(`${a} ${b}`)
        return send(response, 204)
      case 'DELETE /lists/:/subscriptions/:':
        state.subscriptions.delete(`${a} ${b}`)
        return send(response, 204)
      default:
        return notFound(response)
    }
  }

  return {
    state,
    listWrites,
    handler,
    failNext: (method, path, status, headers = {}) => failures.push({ method, path, status, headers }),
  }
}
