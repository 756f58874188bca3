/** The part of dynalite's API `lib/local/dynamodb.ts` uses (dynalite ships no types). https://github.com/architect/dynalite */
declare module 'dynalite' {
  import type { Server } from 'node:http'

  interface DynaliteOptions {
    /** How long a new table stays CREATING, ms (default 500). */
    readonly createTableMs?: number
    readonly deleteTableMs?: number
    readonly updateTableMs?: number
    /** A LevelDB directory; in memory without one. */
    readonly path?: string
  }

  const dynalite: (options?: DynaliteOptions) => Server
  export default dynalite
}
