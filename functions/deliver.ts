/** SQS → Courier worker. Placeholder until the delivery path lands. */
export const handler = async (): Promise<{ batchItemFailures: { itemIdentifier: string }[] }> => {
  throw new Error('deliver is not implemented yet')
}
