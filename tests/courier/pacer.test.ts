import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createCourierClient } from '../../lib/courier/client.ts'
import type { Outcome } from '../../lib/courier/outcome.ts'
import {
  type Clock,
  createAdaptivePacer,
  createPacers,
  type Pacer,
  rateParamsFor,
} from '../../lib/courier/pacer.ts'
import { CUBIC_DEFAULTS } from '../../lib/courier/rate-control.ts'

/**
 * The adaptive pacer against a real HTTP server on loopback whose limit runs on the same
 * simulated clock as the pacer: waiting advances the clock instead of sleeping, so the figures
 * do not depend on the machine's speed.
 */

const virtualClock = (): Clock & { time: number } => {
  const clock = {
    time: 0,
    now: () => clock.time,
    sleep: (ms: number) => {
      clock.time += ms
      return new Promise<void>((resolve) => setImmediate(resolve))
    },
  }
  return clock
}

interface Hit {
  readonly at: number
  readonly status: number
}

/** A Courier stand-in on loopback: a token bucket of `rps` on the given clock (429 beyond). */
const startLimitedServer = async (clock: Clock, rps: number | undefined, burst = 2) => {
  const hits: Hit[] = []
  let tokens = burst
  let last = 0
  const server: Server = createServer((request, response) => {
    request.resume()
    request.on('end', () => {
      const at = clock.now()
      let status = 202
      if (rps !== undefined) {
        tokens = Math.min(burst, tokens + ((at - last) / 1_000) * rps)
        last = at
        if (tokens >= 1) tokens -= 1
        else status = 429
      }
      hits.push({ at, status })
      response.writeHead(status, { 'content-type': 'application/json' })
      response.end(
        status === 202 ? '{"messageId":"1"}' : '{"message":"Too Many Requests","type":"rate_limit_error"}',
      )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  servers.push(server)
  return { url, hits }
}

const servers: Server[] = []
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((server) => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(resolve))
    }),
  )
})

/** `concurrency` senders share one pacer until the simulated clock reaches `seconds`. */
const drive = async (pacer: Pacer, url: string, clock: Clock, seconds: number, concurrency = 4) => {
  const courier = createCourierClient({ baseUrl: url, authToken: 'test', timeoutMs: 5_000 })
  const sender = async () => {
    while (clock.now() < seconds * 1_000) {
      const slot = await pacer.acquire()
      if (slot === undefined) return
      const { outcome } = await courier.send(
        { method: 'POST', path: '/inbound/segment', body: { type: 'track' } },
        { deadline: Date.now() + 5_000 },
      )
      pacer.report(slot, outcome)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, sender))
}

const window = (hits: readonly Hit[], from: number, to: number) => {
  const inside = hits.filter((hit) => hit.at >= from * 1_000 && hit.at < to * 1_000)
  return {
    delivered: inside.filter((hit) => hit.status === 202).length / (to - from),
    refusedShare: inside.filter((hit) => hit.status === 429).length / Math.max(1, inside.length),
  }
}

describe('an adaptive pacer against a loopback server with a token-bucket limit', () => {
  it('finds the unknown limit from a cold start and settles within bounds of it', async () => {
    // Prepare: 30 requests/s, never told to the pacer
    const clock = virtualClock()
    const { url, hits } = await startLimitedServer(clock, 30)
    const pacer = createAdaptivePacer({
      endpointClass: 'inbound',
      params: rateParamsFor('inbound', { maxRps: undefined, instances: 1 }),
      clock,
    })

    // Act
    await drive(pacer, url, clock, 50)

    // Assess: cold start well under the limit, then most of it used with few 429s
    expect(window(hits, 0, 1).delivered).toBeLessThan(5)
    const settled = window(hits, 15, 50)
    expect(settled.delivered).toBeGreaterThan(30 * 0.8)
    expect(settled.delivered).toBeLessThanOrEqual(30 * 1.02)
    expect(settled.refusedShare).toBeLessThan(0.1)
    expect(pacer.ratePerSecond()).toBeGreaterThan(30 * 0.5)
    expect(pacer.ratePerSecond()).toBeLessThan(30 * 1.5)
  })

  it('never starts more than the COURIER_MAX_RPS share, however willing Courier is', async () => {
    // Prepare: a server without a limit; the fleet budget 20 req/s over 2 instances
    const clock = virtualClock()
    const { url, hits } = await startLimitedServer(clock, undefined)
    const pacer = createAdaptivePacer({
      endpointClass: 'inbound',
      params: rateParamsFor('inbound', { maxRps: 20, instances: 2 }),
      clock,
    })

    // Act
    await drive(pacer, url, clock, 20)

    // Assess: at most 10 in every second, and all of them used once warm
    const perSecond = Array.from(
      { length: 20 },
      (_, s) => hits.filter((h) => Math.floor(h.at / 1_000) === s).length,
    )
    expect(Math.max(...perSecond)).toBeLessThanOrEqual(10)
    expect(perSecond.slice(1, 19).every((n) => n === 10)).toBe(true)
    expect(pacer.ratePerSecond()).toBe(10)
  })
})

describe('pacer bookkeeping', () => {
  const refusal: Outcome = { kind: 'rate-limited', status: 429, retryAfterSeconds: undefined }

  it('tells once each time the rate has halved, and holds records back one interval of the cut rate', async () => {
    // Prepare
    const clock = virtualClock()
    const halvings: { from: number; to: number }[] = []
    const pacer = createAdaptivePacer({
      endpointClass: 'inbound',
      params: { ...rateParamsFor('inbound', { maxRps: undefined, instances: 1 }), initialRate: 8 },
      clock,
      onHalved: ({ from, to }) => halvings.push({ from, to }),
    })

    // Act: refusals, each for a request sent after the previous cut, one more than halving takes
    const toHalve = Math.ceil(Math.log(0.5) / Math.log(CUBIC_DEFAULTS.decrease))
    for (let i = 0; i <= toHalve; i++) {
      const slot = await pacer.acquire()
      clock.time += 10
      pacer.report(slot as NonNullable<typeof slot>, refusal)
    }

    // Assess: told once, when 8 × β^n first fell to 4 or below
    expect(halvings).toHaveLength(1)
    expect(halvings[0]?.from).toBe(8)
    expect(halvings[0]?.to).toBeCloseTo(8 * CUBIC_DEFAULTS.decrease ** toHalve, 9)
    expect(halvings[0]?.to).toBeLessThanOrEqual(4)
    expect(pacer.holdBackSeconds()).toBe(Math.ceil(1 / (8 * CUBIC_DEFAULTS.decrease ** (toHalve + 1))))
  })

  it('gives up a wait when its signal aborts, starting nothing', async () => {
    const clock = virtualClock()
    const pacer = createAdaptivePacer({
      endpointClass: 'lists',
      params: rateParamsFor('lists', { maxRps: undefined, instances: 5 }),
      clock,
    })
    const first = await pacer.acquire()
    const controller = new AbortController()
    controller.abort()

    const second = await pacer.acquire(controller.signal)

    expect(first?.sentAt).toBe(0)
    expect(second).toBeUndefined()
  })

  it('keeps one pacer per endpoint class in an instance: a limited class does not slow the others', () => {
    const pacerFor = createPacers({ maxRps: undefined, instances: 5 })

    pacerFor('lists').report({ sentAt: 0, saturated: true }, refusal)

    expect(pacerFor('lists')).toBe(pacerFor('lists'))
    expect(pacerFor('lists').ratePerSecond()).toBeLessThan(20 / 60 / 5)
    expect(pacerFor('inbound').ratePerSecond()).toBe(1)
    expect(pacerFor.active().map(([endpointClass]) => endpointClass)).toEqual(['lists', 'inbound'])
  })
})
