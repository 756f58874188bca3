import { getParameter } from '@aws-lambda-powertools/parameters/ssm'
import type { SecretRef } from './config.ts'
import { ConfigError } from './errors/config-error.ts'

/**
 * Secrets are SSM Parameter Store SecureStrings in a deploy, read at run time and cached for
 * `maxAgeSeconds`, so no secret value ever sits in the CloudFormation template or the Lambda
 * environment, and a rotated secret is picked up within minutes. Locally a plain value works.
 * https://docs.powertools.aws.dev/lambda/typescript/latest/features/parameters/
 */
export const resolveSecret = async (
  variable: string,
  ref: SecretRef | undefined,
  maxAgeSeconds: number,
): Promise<string | undefined> => {
  if (ref === undefined) return undefined
  if ('value' in ref) return ref.value
  let value: string | undefined
  try {
    value = await getParameter(ref.parameter, { decrypt: true, maxAge: maxAgeSeconds })
  } catch (error) {
    throw new ConfigError(
      `${variable}_PARAMETER`,
      `SSM parameter ${ref.parameter} could not be read: ${(error as Error).message}`,
      { cause: error },
    )
  }
  if (value === undefined || value === '') {
    throw new ConfigError(`${variable}_PARAMETER`, `SSM parameter ${ref.parameter} is missing or empty`)
  }
  return value
}
