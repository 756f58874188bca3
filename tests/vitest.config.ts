import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['tests/**/*.test.ts'],
    // Most test files wait on sockets, child processes and timers rather than compute, so more
    // files run at once than vitest's default of one per core but one (a single file on 2 cores).
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    env: {
      // Quiet by default; `POWERTOOLS_LOG_LEVEL=DEBUG npm test` shows the relay's logs.
      POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    },
  },
})
