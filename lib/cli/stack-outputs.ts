import { type CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation'

/**
 * What a person needs after `npm run deploy`: the webhook URL (the stack's WebhookUrl output,
 * read with DescribeStacks) and the next step, wiring Segment and sending a test event.
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html
 */

export type CloudFormation = Pick<CloudFormationClient, 'send'>

/** The stack's outputs by key ({} when it has none). */
export const stackOutputs = async (
  cloudFormation: CloudFormation,
  stackName: string,
): Promise<Record<string, string>> => {
  const { Stacks = [] } = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }))
  const outputs: Record<string, string> = {}
  for (const output of Stacks[0]?.Outputs ?? []) {
    if (output.OutputKey !== undefined && output.OutputValue !== undefined) {
      outputs[output.OutputKey] = output.OutputValue
    }
  }
  return outputs
}

/** The SSM names of the credentials Segment must send: undefined when the ingestAuth mode does not use one. */
export interface IngestCredentialNames {
  readonly sharedSecretParameter: string | undefined
  readonly ingestTokenParameter: string | undefined
}

const readBack = (name: string, region: string) =>
  `"$(aws ssm get-parameter --region ${region} --with-decryption --name ${name} --query Parameter.Value --output text)"`

/** Pure: the closing lines of a deploy, naming the credentials the stage's ingestAuth mode needs. */
export const nextSteps = (webhookUrl: string, names: IngestCredentialNames, region: string): string[] => {
  const secret = names.sharedSecretParameter
  const token = names.ingestTokenParameter
  const credentials = [
    secret !== undefined ? `the shared secret (${secret}) as its Shared Secret` : undefined,
    token !== undefined
      ? `an "Authorization: Bearer <ingest token>" header (${token}) in its mapping`
      : undefined,
  ].filter((part) => part !== undefined)
  const flags = [
    secret !== undefined ? `--secret ${readBack(secret, region)}` : undefined,
    token !== undefined ? `--token ${readBack(token, region)}` : undefined,
  ].filter((part) => part !== undefined)
  return [
    `Webhook URL: ${webhookUrl}`,
    `Next: in Segment, add a Webhooks (Actions) destination that posts to this URL, with ${credentials.join(' and ')} (README, "Wire Segment"); then send a test event:`,
    `  npm run send-test-event -- --url ${webhookUrl} ${flags.join(' ')}`,
  ]
}
