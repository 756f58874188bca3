import { describe, expect, it } from 'vitest'
import { addMetric, createMetrics, METRICS_NAMESPACE } from '../lib/telemetry.ts'

describe('metrics', () => {
  it('carry the stage as a dimension beside the service, so two stages in one account never mix', () => {
    // Prepare
    const prod = createMetrics('prod')
    const dev = createMetrics('dev')

    // Act
    addMetric(prod, 'Delivered', 3)
    addMetric(dev, 'Delivered', 5)
    const [prodEmf, devEmf] = [prod.serializeMetrics(), dev.serializeMetrics()]

    // Assess: the EMF document CloudWatch reads
    for (const emf of [prodEmf, devEmf]) {
      expect(emf._aws.CloudWatchMetrics).toEqual([
        expect.objectContaining({ Namespace: METRICS_NAMESPACE, Dimensions: [['service', 'stage']] }),
      ])
    }
    expect(prodEmf).toMatchObject({ service: 'segment-courier-relay', stage: 'prod', Delivered: 3 })
    expect(devEmf).toMatchObject({ service: 'segment-courier-relay', stage: 'dev', Delivered: 5 })
  })
})
