import { type ParseArgsConfig, parseArgs } from 'node:util'

/**
 * Flags for the CLIs: parsed with node:util, `--help` prints the usage, a bad flag prints it to
 * stderr. Returns the flags, or the exit code to end with (0 after --help, 2 after a bad flag).
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
    console.error(`${(error as Error).message}\n${usage}`)
    return 2
  }
}
