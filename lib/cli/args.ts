import { type ParseArgsConfig, parseArgs } from 'node:util'
import { configMistakes } from '../errors/config-error.ts'

/**
 * What a CLI prints for a mistake in how it was called: the problem first, on its own line, then
 * the usage's synopsis (its lines up to the first blank one) and where the rest is, so the reason
 * is not lost above a screen of help.
 */
export const usageProblem = (problem: string, usage: string): string => {
  const blank = usage.indexOf('\n\n')
  const synopsis = blank === -1 ? usage : usage.slice(0, blank)
  return `error: ${problem}\n${synopsis}\n(--help explains every flag)`
}

/**
 * Flags for the CLIs: parsed with node:util, `--help` prints the usage, a bad flag prints the
 * problem and the synopsis to stderr. Returns the flags, or the exit code to end with (0 after --help, 2 after a bad flag).
 */
export const parseFlags = <T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
  usage: string,
): ReturnType<typeof parseArgs<{ args: string[]; options: T }>>['values'] | number => {
  try {
    const { values } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean' } } })
    if ((values as { help?: boolean }).help) {
      console.log(usage)
      return 0
    }
    return values as ReturnType<typeof parseArgs<{ args: string[]; options: T }>>['values']
  } catch (error) {
    console.error(usageProblem((error as Error).message, usage))
    return 2
  }
}

/**
 * A hint for the failures a person can fix from here: nothing listening (is `npm start`
 * running?), and a queue that does not exist, which locally most often means `npm start` runs the
 * other queue type (a FIFO queue's name ends in .fifo, so the CLI looked for the other name). SQS
 * answers that with `QueueDoesNotExist` ("The specified queue does not exist."):
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html
 */
export const errorHint = (error: unknown, env: Readonly<Record<string, string | undefined>>): string => {
  if ((error as { code?: string }).code === 'ECONNREFUSED') return ' (is `npm start` running? SQS_PORT?)'
  const name = (error as { name?: string }).name ?? ''
  const message = (error as { message?: string }).message ?? ''
  if (/QueueDoesNotExist|NonExistentQueue/.test(name) || message.includes('queue does not exist')) {
    const type = env.QUEUE_TYPE?.trim() || 'fifo'
    return ` (looked for the ${type} queues, QUEUE_TYPE=${type}: set QUEUE_TYPE to the one \`npm start\` runs, or check --dlq-url/--queue-url)`
  }
  return ''
}

/**
 * Runs a CLI's main when the file is executed: failures print one clear line, not a stack. A
 * setting that is wrong (a ConfigError, one line each) ends with status 2, as a usage mistake does.
 */
export const runCli = async (main: (argv: string[]) => Promise<number>): Promise<void> => {
  try {
    process.exitCode = await main(process.argv.slice(2))
  } catch (error) {
    const mistakes = configMistakes(error)
    if (mistakes !== undefined) {
      for (const mistake of mistakes) console.error(mistake.message)
      process.exitCode = 2
      return
    }
    console.error(`error: ${(error as Error).message || String(error)}${errorHint(error, process.env)}`)
    process.exitCode = 1
  }
}
