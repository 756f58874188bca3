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

/** Put in the environment of the package run; none of them may appear in the template or the zips. */
export const SENTINELS = {
  COURIER_AUTH_TOKEN: 'SENTINEL_COURIER_TOKEN_91f3',
  SEGMENT_SHARED_SECRET: 'SENTINEL_SHARED_SECRET_91f3',
  INGEST_TOKEN: 'SENTINEL_INGEST_TOKEN_91f3',
} as const

/** Runs osls with no AWS credentials at all: what must work offline is proven to. */
export const osls = (args: string[]) =>
  promisify(execFile)(process.execPath, [OSLS, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...SENTINELS, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: '' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  })

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
    await osls(['package', '--package', dir, ...params])
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
