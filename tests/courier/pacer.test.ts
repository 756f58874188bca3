import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createCourierClient } from '../../lib/courier/client.ts'
import type { Outcome } from '../../lib/courier/outcome.ts'
import {
  type Clock,
  createAdaptivePacer,
  createPacers,
  isPushback,
  LISTS_PUBLISHED_RPS,
  type Pacer,
  rateParamsFor,
} from '../../lib/courier/pacer.ts'
import { CUBIC_DEFAULTS, plateauSeconds } from '../../lib/courier/rate-control.ts'

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

describe('a cold instance: no pacing until Courier pushes back', () => {
  const refusal: Outcome = { kind: 'rate-limited', status: 429, retryAfterSeconds: undefined }
  const delivered: Outcome = { kind: 'delivered', status: 202 }

  /** A clock that counts its waits: an open pacer must never wait. */
  const countingClock = () => {
    const clock = virtualClock()
    const waits: number[] = []
    const sleep = clock.sleep
    return Object.assign(clock, {
      waits,
      sleep: (ms: number) => {
        waits.push(ms)
        return sleep(ms)
      },
    })
  }

  it('starts every call at once, however many, without waiting, while Courier has not pushed back', async () => {
    // Prepare
    const clock = countingClock()
    const pacer = createPacers({ maxRps: undefined, instances: 5 }, { clock })('inbound')

    // Act: 50 calls asked for at once, each answered 202
    const slots = await Promise.all(Array.from({ length: 50 }, () => pacer.acquire()))
    for (const slot of slots) pacer.report(slot as NonNullable<typeof slot>, delivered)

    // Assess: all started at time 0, the clock never waited, and the class is still open
    expect(slots.map((slot) => slot?.sentAt)).toEqual(Array.from({ length: 50 }, () => 0))
    expect(clock.waits).toEqual([])
    expect(pacer.ratePerSecond()).toBe(Number.POSITIVE_INFINITY)
  })

  it('engages rate control at the first 429: β × the rate sent over the last second, calls spaced from then on', async () => {
    // Prepare: 20 calls started in the first 500 ms
    const clock = countingClock()
    const pacer = createPacers({ maxRps: undefined, instances: 5 }, { clock })('inbound')
    const slots = []
    for (let i = 0; i < 20; i++) {
      slots.push(await pacer.acquire())
      clock.time += 25
    }

    // Act: one of them is answered 429
    pacer.report(slots[19] as NonNullable<(typeof slots)[number]>, refusal)
    const next = [await pacer.acquire(), await pacer.acquire(), await pacer.acquire()]

    // Assess: the rate is 0.75 × 20/s, and the next calls start one interval apart
    const rate = 20 * CUBIC_DEFAULTS.decrease
    expect(pacer.ratePerSecond()).toBeCloseTo(rate, 9)
    expect(clock.waits.length).toBeGreaterThan(0)
    const gaps = next.slice(1).map((slot, i) => (slot?.sentAt as number) - (next[i]?.sentAt as number))
    for (const gap of gaps) expect(gap).toBeCloseTo(1_000 / rate, 6)
  })

  it('engages on an answer carrying Retry-After too, and not on a timeout or a 5xx', async () => {
    const clock = countingClock()
    const pacers = createPacers({ maxRps: undefined, instances: 5 }, { clock })
    const slot = await pacers('inbound').acquire()
    const timeout: Outcome = { kind: 'transient', status: undefined, reason: 'timeout after 10000 ms' }
    const unavailable: Outcome = { kind: 'transient', status: 503, reason: 'HTTP 503' }

    pacers('inbound').report(slot as NonNullable<typeof slot>, timeout)
    pacers('inbound').report(slot as NonNullable<typeof slot>, unavailable)
    const stillOpen = pacers('inbound').ratePerSecond()
    pacers('inbound').report(slot as NonNullable<typeof slot>, { ...unavailable, retryAfterSeconds: 5 })

    expect(isPushback({ ...unavailable, retryAfterSeconds: 5 })).toBe(true)
    expect(isPushback(unavailable)).toBe(false)
    expect(stillOpen).toBe(Number.POSITIVE_INFINITY)
    expect(Number.isFinite(pacers('inbound').ratePerSecond())).toBe(true)
  })

  it('paces lists from the first call at Courier’s published 20 a minute, split over the instances', async () => {
    const clock = countingClock()
    const pacer = createPacers({ maxRps: undefined, instances: 5 }, { clock })('lists')

    const starts = [await pacer.acquire(), await pacer.acquire(), await pacer.acquire()]

    // (the pacer may make up one missed interval after an idle spell: the second starts at once)
    expect(pacer.ratePerSecond()).toBeCloseTo(LISTS_PUBLISHED_RPS / 5, 9)
    expect(clock.waits.length).toBeGreaterThan(0)
    expect((starts[2]?.sentAt as number) - (starts[1]?.sentAt as number)).toBeCloseTo(
      1_000 / (LISTS_PUBLISHED_RPS / 5),
      6,
    )
  })
})

describe('an adaptive pacer against a loopback server with a token-bucket limit', () => {
  it('finds the unknown limit after Courier first pushes back and settles within bounds of it', async () => {
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

    // Assess: open until the first 429 (nothing waited before it), then most of the limit used
    // with few 429s
    const firstRefused = hits.findIndex((hit) => hit.status === 429)
    expect(firstRefused).toBeGreaterThan(0)
    expect(hits.slice(0, firstRefused).every((hit) => hit.at === 0)).toBe(true)
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
      params: {
        ...rateParamsFor('inbound', { maxRps: undefined, instances: 1, coldStart: 'slow-start' }),
        initialRate: 8,
      },
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

  it('tells the fleet the higher rate Courier takes, forgets the limit once it went stale, and learns the next 429’s', async () => {
    // Prepare: an instance seeded with the fleet's 4 requests/s; Courier now takes everything
    const clock = virtualClock()
    const told: (number | undefined)[] = []
    const params = rateParamsFor('inbound', { maxRps: undefined, instances: 5 })
    const pacer = createAdaptivePacer({
      endpointClass: 'inbound',
      params,
      clock,
      fleetRate: 4,
      onLearnt: ({ ratePerSecond }) => told.push(ratePerSecond),
    })
    const stale = params.probeAfter * plateauSeconds(params, 4)
    const delivered: Outcome = { kind: 'delivered', status: 202 }

    // Act: calls asked for back to back (each waits its turn), all taken, until past the stale point
    while (clock.now() < (stale + 2) * 1_000) {
      const slot = await pacer.acquire()
      pacer.report(slot as NonNullable<typeof slot>, delivered)
    }
    const toldWhileTaken = [...told]
    // …then one 429
    const slot = await pacer.acquire()
    pacer.report(slot as NonNullable<typeof slot>, refusal)

    // Assess: while Courier took everything, the rising rate it took was told, then forgotten
    // once (undefined) at the stale point and nothing after; the 429's limit was told next
    const rising = toldWhileTaken.slice(0, -1) as number[]
    expect(toldWhileTaken.at(-1)).toBeUndefined()
    expect(rising.length).toBeGreaterThan(0)
    expect(rising.every((rate, i) => rate > (i === 0 ? 4 : (rising[i - 1] as number)) * 1.1)).toBe(true)
    expect(told).toHaveLength(toldWhileTaken.length + 1)
    expect(told.at(-1)).toBeGreaterThan(4)
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
    // inbound is still open (no pushback there): it has no rate to report
    expect(pacerFor('inbound').ratePerSecond()).toBe(Number.POSITIVE_INFINITY)
    expect(pacerFor.active().map(([endpointClass]) => endpointClass)).toEqual(['lists'])
  })
})
