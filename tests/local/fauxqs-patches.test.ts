import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  FAUXQS_FINGERPRINTS,
  FAUXQS_VERSION,
  fauxqsDifferences,
  installedFauxqs,
} from '../../lib/local/fauxqs-patches.ts'

/**
 * The local SQS patches fauxqs's private internals: they hold only for the version they were
 * written against, so the package is pinned exactly and a change to any patched internal stops
 * the local queues with a message naming it.
 */

describe('the fauxqs the patches were written against', () => {
  it('is pinned exactly in package.json, to the version the patches name', () => {
    const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      devDependencies: Record<string, string>
    }

    expect(manifest.devDependencies.fauxqs).toBe(FAUXQS_VERSION)
  })

  it('is the one installed, every patched internal unchanged', async () => {
    const installed = await installedFauxqs()

    expect(installed.version).toBe(FAUXQS_VERSION)
    expect(fauxqsDifferences(installed)).toEqual([])
  })

  it('names the version and each internal that differ', () => {
    // Prepare: another release in which dequeueFifo was rewritten and the listen call dropped
    const { 'app.js listen': _listen, ...kept } = FAUXQS_FINGERPRINTS
    const installed = {
      version: '2.5.0',
      fingerprints: { ...kept, 'sqs/sqsStore.js SqsQueue.prototype.dequeueFifo': '0000000000000000' },
    }

    // Act
    const differences = fauxqsDifferences(installed)

    // Assess
    expect(differences).toEqual([
      `fauxqs is 2.5.0, the patches were written against ${FAUXQS_VERSION}`,
      expect.stringMatching(
        /^sqs\/sqsStore\.js SqsQueue\.prototype\.dequeueFifo changed \(fingerprint 0{16}, expected [0-9a-f]{16}\)$/,
      ),
      expect.stringMatching(/^app\.js listen changed \(fingerprint missing, expected [0-9a-f]{16}\)$/),
    ])
  })
})
