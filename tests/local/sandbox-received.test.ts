import { afterAll, beforeAll, expect, it } from 'vitest'
import { type CourierSandbox, startCourierSandbox } from '../../lib/local/courier-sandbox.ts'
import { identify } from '../support/fixtures.ts'

/** GET /_sandbox/received narrowed to one person or one event, with ISO times beside epoch ms. */

let sandbox: CourierSandbox
const auth = { authorization: 'Bearer t', 'content-type': 'application/json' }

beforeAll(async () => {
  sandbox = await startCourierSandbox({ authToken: 't' })
})
afterAll(() => sandbox.stop())

const call = (method: string, path: string, body?: unknown) =>
  fetch(`${sandbox.url}${path}`, {
    method,
    headers: auth,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })

const received = async (query: string) =>
  (await (await fetch(`${sandbox.url}/_sandbox/received${query}`)).json()) as {
    time: string
    at: number
    method: string
    path: string
    messageId?: string
  }[]

it('filters by ?userId= (the event’s user, or the person in the path or the recipients) and by ?messageId=', async () => {
  // Prepare: three requests about jane, one about someone else
  const jane = 'jane.doe@example.com'
  const event = identify({ userId: jane })
  await call('POST', '/inbound/segment', event)
  await call('DELETE', `/profiles/${encodeURIComponent(jane)}`)
  await call('POST', '/lists/vip-1/subscriptions', {
    recipients: [{ recipientId: jane }, { recipientId: 'bob' }],
  })
  await call('POST', '/inbound/segment', identify({ userId: 'someone-else' }))

  // Act
  const byUser = await received(`?userId=${encodeURIComponent(jane)}`)
  const byMessage = await received(`?messageId=${encodeURIComponent(event.messageId)}`)
  const all = await received('')

  // Assess
  expect(byUser.map((r) => `${r.method} ${r.path}`)).toEqual([
    'POST /inbound/segment',
    `DELETE /profiles/${jane}`,
    'POST /lists/vip-1/subscriptions',
  ])
  expect(byMessage.map((r) => r.messageId)).toEqual([event.messageId])
  expect(all).toHaveLength(4)
  for (const record of all) expect(record.time).toBe(new Date(record.at).toISOString())
})
