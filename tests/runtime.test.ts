import { expect, it } from 'vitest'

it('runs on Node 24, the major of the Lambda runtime nodejs24.x', () => {
  expect(process.versions.node.split('.')[0]).toBe('24')
})
