import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * A real HTTP server on a free port, standing in for Courier in tests: it records every request
 * it receives (so tests can count attempts) and answers through a handler the test sets.
 */

export interface RecordedRequest {
  readonly method: string
  /** Path and query exactly as received, percent-encoding included. */
  readonly url: string
  readonly headers: IncomingHttpHeaders
  /** The body bytes as UTF-8 text, '' when there were none. */
  readonly body: string
}

/** Answers a request; may also leave it hanging or destroy the socket. */
export type StubHandler = (request: RecordedRequest, response: ServerResponse, raw: IncomingMessage) => void

export interface HttpStub {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  readonly url: string
  readonly requests: RecordedRequest[]
  handle(handler: StubHandler): void
  reset(): void
  stop(): Promise<void>
}

/** Replies with JSON (or nothing for `undefined`) and the given headers. */
export const reply =
  (status: number, body?: unknown, headers: Record<string, string> = {}): StubHandler =>
  (_request, response) => {
    const text = body === undefined ? '' : JSON.stringify(body)
    response.writeHead(
      status,
      body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    )
    response.end(text)
  }

/** Never answers: the request stays open until the client gives up (or the stub stops). */
export const hang: StubHandler = () => {}

/** Drops the connection without answering, as a crashing proxy or a reset does. */
export const destroySocket: StubHandler = (_request, _response, raw) => {
  raw.socket.destroy()
}

export const startHttpStub = async (
  initial: StubHandler = reply(202, { messageId: 'stub' }),
): Promise<HttpStub> => {
  let handler = initial
  const requests: RecordedRequest[] = []
  const server = createServer((raw, response) => {
    const chunks: Buffer[] = []
    raw.on('data', (chunk: Buffer) => chunks.push(chunk))
    raw.on('end', () => {
      const request = {
        method: raw.method ?? '',
        url: raw.url ?? '',
        headers: raw.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      }
      requests.push(request)
      handler(request, response, raw)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    handle: (next) => {
      handler = next
    },
    reset: () => {
      requests.length = 0
      handler = initial
    },
    stop: async () => {
      // Hanging requests would keep close() waiting forever.
      server.closeAllConnections()
      await new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      )
    },
  }
}
