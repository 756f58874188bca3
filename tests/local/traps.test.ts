import { execFile, execFileSync } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { createServer } from 'node:net'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkCourier } from '../../lib/local/courier-check.ts'
import { type HttpStub, reply, startHttpStub } from '../support/http-stub.ts'
import { startNpmStart } from '../support/npm-start.ts'

/**
 * The traps a new user meets at start-up, each answered by one clear line: an old Node, and a
 * Courier token that Courier refuses or a Courier that cannot be reached.
 */

const root = new URL('../..', import.meta.url)

describe('npm start on an older Node', () => {
  it('says in one line that it needs Node 24 and how to get it, before loading any .ts file', async () => {
    // Prepare: Node 24 made to report 20 before the entry runs (what `node` on PATH often is)
    const pretend = "data:text/javascript,Object.defineProperty(process.versions,'node',{value:'20.20.2'})"

    // Act
    const result = await promisify(execFile)(process.execPath, ['--import', pretend, 'lib/local/start.mjs'], {
      cwd: root,
    }).catch((error: { code: number; stdout: string; stderr: string }) => error)

    // Assess
    expect(result).toMatchObject({ code: 1, stdout: '' })
    expect((result as { stderr: string }).stderr).toBe(
      'segment-courier-relay needs Node 24; this is Node 20.20.2. Run `npm start` (its scripts use the Node 24 that `npm install` put in node_modules).\n',
    )
  })

  const systemNode = (() => {
    try {
      return execFileSync('/usr/bin/node', ['--version'], { encoding: 'utf8' }).trim()
    } catch {
      return undefined
    }
  })()
  it.runIf(systemNode !== undefined && Number(systemNode.slice(1).split('.')[0]) < 24)(
    'says the same on a real older Node, which cannot even parse TypeScript',
    async () => {
      const result = await promisify(execFile)('/usr/bin/node', ['lib/local/start.mjs'], { cwd: root }).catch(
        (error: { code: number; stderr: string }) => error,
      )

      expect(result).toMatchObject({
        code: 1,
        stderr: expect.stringMatching(/^segment-courier-relay needs Node 24; this is Node 2\d/),
      })
    },
  )
})

describe('a configured Courier checked once at start-up (POST /debug, as Courier’s own destination tests a key)', () => {
  let courier: HttpStub
  beforeAll(async () => {
    courier = await startHttpStub()
  })
  afterAll(() => courier.stop())

  it('checks the token with one authenticated POST /debug', async () => {
    courier.handle(reply(200, {}))

    const check = await checkCourier(courier.url, 'the-token')

    expect(check).toEqual({ kind: 'accepted', status: 200 })
    expect(courier.requests.map((r) => [r.method, r.url, r.headers.authorization])).toEqual([
      ['POST', '/debug', 'Bearer the-token'],
    ])
  })

  it('says once, in one line, that Courier refused COURIER_AUTH_TOKEN', async () => {
    // Prepare
    courier.reset()
    courier.handle(reply(401, { message: 'Unauthorized', type: 'authentication_error' }))
    const relay = startNpmStart({ COURIER_BASE_URL: courier.url, COURIER_AUTH_TOKEN: 'wrong' })

    // Act
    const [line] = await relay.waitFor(/^WARNING: Courier .*$/m)
    relay.child.kill('SIGINT')
    await relay.stopped()

    // Assess
    expect(line).toBe(
      `WARNING: Courier (${courier.url} (COURIER_BASE_URL)) refused COURIER_AUTH_TOKEN: POST /debug answered 401. Events wait in the queue, retried slowly, until the token is right.`,
    )
    expect(relay.output().match(/WARNING: Courier/g)).toHaveLength(1)
  })

  it('says once, in one line, that Courier cannot be reached', async () => {
    // Prepare: a port nothing listens on
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const { port } = closed.address() as AddressInfo
    await new Promise((resolve) => closed.close(resolve))
    const relay = startNpmStart({ COURIER_BASE_URL: `http://127.0.0.1:${port}`, COURIER_AUTH_TOKEN: 'token' })

    // Act
    const [line] = await relay.waitFor(/^WARNING: Courier .*$/m)
    relay.child.kill('SIGINT')
    await relay.stopped()

    // Assess
    expect(line).toMatch(
      /^WARNING: Courier \(.+\) cannot be reached: ECONNREFUSED\. Events wait in the queue/,
    )
  })
})
