import { execFile, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { inflateRawSync } from 'node:zlib'

/**
 * The offline deployment build for tests: `osls package` into .serverless/ (no AWS credentials),
 * once per process, and a small zip reader so CI needs no `unzip` binary.
 */

const ROOT = new URL('../..', import.meta.url)
const OSLS = new URL('node_modules/osls/bin/serverless.js', ROOT).pathname
/** Serverless Framework v3 (the `serverless` devDependency, pinned to the last open-source release). */
const SERVERLESS_V3 = new URL('node_modules/serverless/bin/serverless.js', ROOT).pathname

/** Put in the environment of the package run; none of them may appear in the template or the zips. */
export const SENTINELS = {
  COURIER_AUTH_TOKEN: 'SENTINEL_COURIER_TOKEN_91f3',
  SEGMENT_SHARED_SECRET: 'SENTINEL_SHARED_SECRET_91f3',
  INGEST_TOKEN: 'SENTINEL_INGEST_TOKEN_91f3',
} as const

/**
 * Serverless Framework v3 reaches out on its own unless told not to: usage telemetry, update
 * notifications, a geolocation check that may send Chinese users to another CLI, auto-update.
 * Each switch is read from the environment by serverless@3.40.0 (lib/utils/telemetry/are-disabled.js,
 * @serverless/utils get-notifications-mode, lib/cli/triage.js, lib/utils/eventually-update.js).
 */
export const SERVERLESS_V3_OFFLINE = {
  SLS_TELEMETRY_DISABLED: '1',
  SLS_NOTIFICATIONS_MODE: 'off',
  SLS_GEO_LOCATION: 'no-cn',
  SLS_DISABLE_AUTO_UPDATE: '1',
} as const

export type Framework = 'osls' | 'serverless@3'

/** Runs a framework's CLI with no AWS credentials at all: what must work offline is proven to. */
export const framework = (name: Framework, args: string[]) =>
  promisify(execFile)(process.execPath, [name === 'osls' ? OSLS : SERVERLESS_V3, ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...SENTINELS,
      ...(name === 'serverless@3' ? SERVERLESS_V3_OFFLINE : {}),
      AWS_ACCESS_KEY_ID: '',
      AWS_SECRET_ACCESS_KEY: '',
      AWS_PROFILE: '',
    },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  })

export const osls = (args: string[]) => framework('osls', args)

/** The version a framework's CLI reports (`--version`'s first line naming it). */
export const frameworkVersion = async (name: Framework): Promise<string> => {
  const { stdout } = await framework(name, ['--version'])
  return stdout.trim().split('\n')[0] ?? ''
}

let packaged: Promise<unknown> | undefined

/** `osls package` with the default stage and params, run at most once per process. */
export const packageOnce = (): Promise<unknown> => {
  packaged ??= osls(['package'])
  return packaged
}

export const readPackaged = (name: string): Buffer => readFileSync(new URL(`.serverless/${name}`, ROOT))

/** The files of a zip, inflated, read through its central directory. */
export const unzip = (zip: Buffer): Map<string, Buffer> => {
  const files = new Map<string, Buffer>()
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]))
  let offset = zip.readUInt32LE(end + 16)
  for (let i = 0; i < zip.readUInt16LE(end + 10); i++) {
    const method = zip.readUInt16LE(offset + 10)
    const compressed = zip.readUInt32LE(offset + 20)
    const nameLength = zip.readUInt16LE(offset + 28)
    const extra = zip.readUInt16LE(offset + 30) + zip.readUInt16LE(offset + 32)
    const local = zip.readUInt32LE(offset + 42)
    const name = zip.toString('utf8', offset + 46, offset + 46 + nameLength)
    const dataStart = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28)
    const data = zip.subarray(dataStart, dataStart + compressed)
    files.set(name, method === 8 ? inflateRawSync(data) : Buffer.from(data))
    offset += 46 + nameLength + extra
  }
  return files
}

/** Deploy parameters for `osls package --param=…`, and the directory the variant is packaged into. */
export interface TemplateVariant {
  readonly name: string
  readonly params: Readonly<Record<string, string>>
  /** osls unless said. */
  readonly framework?: Framework
}

const variantsRoot = join(tmpdir(), `scr-template-variants-${process.pid}`)

/**
 * Packages each variant into a directory of its own, one after the other (serverless-esbuild
 * builds in the service directory, so two packages at once would share it), after the default
 * package; returns each variant's template path.
 */
export const packageVariants = async (variants: readonly TemplateVariant[]): Promise<Map<string, string>> => {
  await packageOnce()
  const paths = new Map<string, string>()
  for (const variant of variants) {
    const dir = join(variantsRoot, variant.name)
    const params = Object.entries(variant.params).map(([name, value]) => `--param=${name}=${value}`)
    await framework(variant.framework ?? 'osls', ['package', '--package', dir, ...params])
    paths.set(variant.name, join(dir, 'cloudformation-template-update-stack.json'))
  }
  return paths
}

export const readTemplate = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'))

/** cfn-lint, when installed: CFN_LINT, else on PATH, else pyenv's shim. */
export const cfnLintCommand = (): string | undefined =>
  [process.env.CFN_LINT, 'cfn-lint', '/root/.pyenv/shims/cfn-lint'].find(
    (command): command is string =>
      command !== undefined &&
      command !== '' &&
      spawnSync(command, ['--version'], { encoding: 'utf8' }).status === 0,
  )

export interface LintFinding {
  readonly Filename: string
  readonly Level: 'Error' | 'Warning' | 'Informational'
  readonly Message: string
  readonly Rule: { readonly Id: string }
  readonly Location: { readonly Path: readonly unknown[] | null }
}

/** Lints every template in one cfn-lint run (it exits non-zero on findings; the JSON says which). */
export const cfnLint = async (command: string, templates: readonly string[]): Promise<LintFinding[]> => {
  const result = await promisify(execFile)(
    command,
    ['--format', 'json', '--non-zero-exit-code', 'none', ...templates],
    {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    },
  )
  return JSON.parse(result.stdout || '[]') as LintFinding[]
}
