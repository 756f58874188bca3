import { existsSync } from 'node:fs'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { buildTestEvent, sendTestEvent } from '../../lib/segment/test-event.ts'
import { type NpmStart, startNpmStart } from '../support/npm-start.ts'

/**
 * The status page of `npm start` in a real headless Chromium (Debian's `chromium`, which
 * `.ci/run` installs; playwright-core drives it and downloads no browser): it loads, events sent
 * to the relay appear on it with their fate and timeline, and the counts move, without a reload.
 */

const CHROMIUM = '/usr/bin/chromium'

let relay: NpmStart
let browser: Browser

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does it)`)
  }
  relay = startNpmStart({ AUDIENCE_BATCHING_WINDOW_SECONDS: '0' })
  // --no-sandbox: CI runs as root, where Chromium refuses its own sandbox.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
}, 60_000)

afterAll(async () => {
  await browser?.close()
  relay?.child.kill('SIGINT')
  await relay?.stopped()
})

it('shows the pipe’s counts, the queues, and events as they are delivered, refreshing itself', async () => {
  // Prepare: the page open before any event
  const { port, webhook } = await relay.urls()
  const page = await browser.newPage()
  await page.goto(`http://127.0.0.1:${port}/`)
  await page.locator('#updated').filter({ hasText: /UTC/ }).waitFor()
  const before = await page.locator('#events').textContent()
  const events = [buildTestEvent({ type: 'identify' }), buildTestEvent({ type: 'track' })]

  // Act
  for (const event of events) expect((await sendTestEvent(webhook, event)).status).toBe(200)

  // Assess: each event appears (the page polls; waits end on progress), delivered, with its steps
  expect(before).toContain('none yet')
  for (const event of events) {
    const card = page.locator(`[data-message-id="${event.messageId}"]`)
    await card.locator('.fate', { hasText: 'delivered' }).waitFor()
    await expect(card.locator('.steps').textContent()).resolves.toMatch(
      /ingest +received \(single request of 1 event\) and enqueued\n.*deliver +attempt 1: Courier 202 → delivered/,
    )
  }
  await page.locator('#count-delivered b', { hasText: '2' }).waitFor()
  await expect(page.locator('#count-received b').textContent()).resolves.toBe('2')
  await expect(page.locator('#queues tbody').textContent()).resolves.toMatch(/events.*dlq/s)
  // no 429 met: nothing is paced (a rate shows once Courier pushes back)
  await page.locator('#rates tbody', { hasText: 'not paced: Courier has not pushed back' }).waitFor()
}, 60_000)
