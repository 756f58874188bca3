import { afterAll, beforeAll, expect, it } from 'vitest'
import { buildTestEvent, sendTestEvent } from '../../lib/segment/test-event.ts'
import { type HttpStub, startHttpStub } from '../support/http-stub.ts'
import { startNpmStart } from '../support/npm-start.ts'

/**
 * Ctrl-C while Courier hangs: `npm start` pointed at a loopback Courier that takes every request
 * and never answers. The relay must end at once, not after Courier's timeout, saying what it
 * dropped: the queued event, the one cut off mid-delivery.
 */

let courier: HttpStub

beforeAll(async () => {
  courier = await startHttpStub()
  courier.handle(() => undefined) // never answers
})
afterAll(() => courier.stop())

it('ends at once on Ctrl-C while a Courier call hangs, and counts what it drops', async () => {
  // Prepare: an event whose delivery is under way (Courier has the request, and no answer)
  const relay = startNpmStart({
    COURIER_BASE_URL: courier.url,
    COURIER_AUTH_TOKEN: 'token',
    COURIER_TIMEOUT_MS: '600000',
  })
  const { webhook } = await relay.urls()
  const event = buildTestEvent({ type: 'track' })
  expect((await sendTestEvent(webhook, event)).status).toBe(200)
  for (;;) {
    if (courier.requests.some((r) => r.url === '/inbound/segment' && r.body.includes(event.messageId))) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }

  // Act
  const signalled = Date.now()
  relay.child.kill('SIGINT')
  await relay.stopped()
  const took = Date.now() - signalled

  // Assess: stopped by itself (status 0), not after the 10-minute Courier timeout, and said so.
  expect(relay.child.exitCode).toBe(0)
  expect(relay.output()).toMatch(
    /dropped: 1 queued event\(s\) \(1 of them cut off mid-delivery: Courier may or may not have them\), 0 in the DLQ, 0 webhook request\(s\) unanswered/,
  )
  // The stop path waits for nothing, so this is scheduling time only; the bound is the README's
  // promise (5 s), far above it, and far below the 600 s the hanging call would take.
  expect(took).toBeLessThan(5_000)
}, 60_000)
