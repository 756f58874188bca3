import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../lib/config.ts'

/**
 * The Courier token travels in every request's Authorization header: COURIER_BASE_URL must be
 * https://, except for this machine (the local Courier sandbox, a loopback test server).
 */

const QUEUES = {
  QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/1/q',
  DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/1/d',
}
const baseUrl = (url: string) => parseConfig({ ...QUEUES, COURIER_BASE_URL: url }).courier.baseUrl

describe('COURIER_BASE_URL', () => {
  it.each([
    'https://api.courier.com',
    'https://courier.internal.example:8443/',
    'http://127.0.0.1:9',
    'http://127.1.2.3',
    'http://localhost:4010',
    'http://[::1]:4010',
  ])('takes %s', (url) => {
    expect(baseUrl(url)).toBe(url.replace(/\/+$/, ''))
  })

  it.each([
    'http://api.courier.com',
    'http://10.0.0.7:8080',
    'http://localhost.example.com',
    'http://128.0.0.1',
    'http://[::2]',
  ])('refuses %s, naming the rule', (url) => {
    expect(() => baseUrl(url)).toThrow(
      /COURIER_BASE_URL.*must be an https:\/\/ URL \(plain http is allowed only for localhost, 127\.0\.0\.0\/8 and \[::1\]\)/,
    )
  })
})
