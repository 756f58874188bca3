import { randomUUID } from 'node:crypto'
import type { Context } from 'aws-lambda'

/**
 * A Lambda-like context for local runs and tests: same fields the handlers and Powertools
 * read, and a real deadline behind getRemainingTimeInMillis().
 * https://docs.aws.amazon.com/lambda/latest/dg/typescript-context.html
 */
export const createLambdaContext = (functionName: string, timeoutMs: number, memoryMb = 256): Context => {
  const deadline = Date.now() + timeoutMs
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: String(memoryMb),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  }
}
