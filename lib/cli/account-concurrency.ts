import {
  GetAccountSettingsCommand,
  GetFunctionConcurrencyCommand,
  type LambdaClient,
} from '@aws-sdk/client-lambda'

/**
 * Whether the account can give a stage the reserved concurrency it asks for, checked before
 * CloudFormation would fail half-way through a deploy.
 *
 * Lambda keeps part of the account's concurrency unreserved for every function without a
 * reservation: reservations may take the unreserved account concurrency minus 100
 * (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html). An account whose
 * whole quota is below 100 (new accounts start at 10) keeps all of it: CloudFormation's error then
 * names the account's own minimum ("Specified ReservedConcurrentExecutions for function decreases
 * account's UnreservedConcurrentExecution below its minimum value of [10]"), so the minimum taken
 * here is min(100, the account's quota).
 * GetAccountSettings answers AccountLimit.ConcurrentExecutions (the quota) and
 * AccountLimit.UnreservedConcurrentExecutions (the quota minus every reservation already made):
 * https://docs.aws.amazon.com/lambda/latest/api/API_GetAccountSettings.html
 * The stage's own functions may already hold reservations (a redeploy): those come back to the
 * pool when replaced, so they are read with GetFunctionConcurrency and counted as available.
 * https://docs.aws.amazon.com/lambda/latest/api/API_GetFunctionConcurrency.html
 */

/** The unreserved concurrency Lambda keeps for functions without a reservation, at most. */
export const UNRESERVED_MINIMUM = 100

export type Lambda = Pick<LambdaClient, 'send'>

export interface Reservation {
  /** The function's key in serverless.yml (ingest, deliver, audiences). */
  readonly function: string
  /** Its deployed name (`<service>-<stage>-<function>`). */
  readonly name: string
  readonly reserved: number
}

export interface AccountConcurrency {
  /** AccountLimit.ConcurrentExecutions: the account's quota in the region. */
  readonly quota: number
  /** AccountLimit.UnreservedConcurrentExecutions, as answered. */
  readonly unreserved: number
  /** What the stage's functions reserve now (0 when a function does not exist yet). */
  readonly heldByStage: number
}

export type ConcurrencyVerdict =
  | { readonly ok: true; readonly line: string }
  | { readonly ok: false; readonly line: string }

/** Pure: whether `wanted` fits, and the one line that says so, naming the numbers. */
export const judgeReservations = (
  wanted: readonly Reservation[],
  account: AccountConcurrency,
  region: string,
): ConcurrencyVerdict => {
  const total = wanted.reduce((sum, r) => sum + r.reserved, 0)
  const minimum = Math.min(UNRESERVED_MINIMUM, account.quota)
  const left = account.unreserved + account.heldByStage - total
  const asked = wanted.map((r) => `${r.function} ${r.reserved}`).join(', ')
  if (left >= minimum) {
    return {
      ok: true,
      line: `reserved concurrency ${total} (${asked}) fits: ${left} of the account's ${account.quota} stay unreserved in ${region} (at least ${minimum} must)`,
    }
  }
  return {
    ok: false,
    line:
      `reserved concurrency ${total} (${asked}) would leave ${left} of the account's ${account.quota} unreserved in ${region}, ` +
      `below the ${minimum} Lambda keeps for other functions: leave the *ReservedConcurrency parameters empty, lower them, ` +
      'or raise the Lambda concurrent executions quota (Service Quotas)',
  }
}

const isNotFound = (error: unknown) =>
  (error as { name?: string } | null)?.name === 'ResourceNotFoundException'

/** The account's limits and what the stage's functions hold now. */
export const readAccountConcurrency = async (
  lambda: Lambda,
  wanted: readonly Reservation[],
): Promise<AccountConcurrency> => {
  const settings = await lambda.send(new GetAccountSettingsCommand({}))
  const quota = settings.AccountLimit?.ConcurrentExecutions
  const unreserved = settings.AccountLimit?.UnreservedConcurrentExecutions
  if (quota === undefined || unreserved === undefined) {
    throw new Error(
      'GetAccountSettings gave no AccountLimit.ConcurrentExecutions/UnreservedConcurrentExecutions',
    )
  }
  let heldByStage = 0
  for (const reservation of wanted) {
    try {
      const held = await lambda.send(new GetFunctionConcurrencyCommand({ FunctionName: reservation.name }))
      heldByStage += held.ReservedConcurrentExecutions ?? 0
    } catch (error) {
      // Not deployed yet: it holds nothing.
      if (!isNotFound(error)) throw error
    }
  }
  return { quota, unreserved, heldByStage }
}
