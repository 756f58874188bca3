import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'

/**
 * lib/ is laid out as the pipe: Segment → ingest → queue → deliver → Courier, and beside deliver
 * the audience list sync (audiences/), plus the cloud on one machine (local/) and the commands
 * (cli/). Imports run one way: a stage may use the stages it stands on and the shared pieces at
 * lib/'s root, never a later stage; the three functions' stages (ingest, deliver, audiences) never
 * use one another.
 */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  '.': ['.', 'errors'],
  errors: ['.', 'errors'],
  segment: ['.', 'errors', 'segment'],
  queue: ['.', 'errors', 'segment', 'queue'],
  courier: ['.', 'errors', 'segment', 'courier'],
  ingest: ['.', 'errors', 'segment', 'queue', 'ingest'],
  deliver: ['.', 'errors', 'segment', 'queue', 'courier', 'deliver'],
  audiences: ['.', 'errors', 'segment', 'queue', 'courier', 'audiences'],
  local: ['.', 'errors', 'segment', 'queue', 'courier', 'ingest', 'deliver', 'audiences', 'local'],
  cli: ['.', 'errors', 'segment', 'queue', 'courier', 'ingest', 'deliver', 'audiences', 'local', 'cli'],
}

const LIB = path.resolve(import.meta.dirname, '../lib')

const walk = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name)
    if (statSync(full).isDirectory()) return walk(full)
    return name.endsWith('.ts') ? [full] : []
  })

const stageOf = (file: string): string => {
  const relative = path.relative(LIB, file)
  return relative.includes(path.sep) ? (relative.split(path.sep)[0] ?? '.') : '.'
}

const relativeImports = (file: string): string[] =>
  [...readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)].map(
    (match) => match[1] ?? '',
  )

describe('lib/ layout', () => {
  const files = walk(LIB)

  it('has only the stage folders of the pipe', () => {
    const folders = readdirSync(LIB).filter((name) => statSync(path.join(LIB, name)).isDirectory())
    expect(folders.sort()).toEqual(
      Object.keys(MAY_IMPORT)
        .filter((stage) => stage !== '.')
        .sort(),
    )
  })

  it('imports run one way: no stage imports a later one', () => {
    const wrong: string[] = []
    for (const file of files) {
      const allowed = MAY_IMPORT[stageOf(file)] ?? []
      for (const specifier of relativeImports(file)) {
        const target = path.resolve(path.dirname(file), specifier)
        if (!target.startsWith(LIB)) continue // package.json
        if (!allowed.includes(stageOf(target))) {
          wrong.push(`${path.relative(LIB, file)} → ${path.relative(LIB, target)}`)
        }
      }
    }
    expect(wrong).toEqual([])
  })

  it('the README map names every folder of lib/', () => {
    const readme = readFileSync(path.resolve(LIB, '../README.md'), 'utf8')
    const development = readme.slice(readme.indexOf('## Development'))
    for (const stage of Object.keys(MAY_IMPORT).filter((name) => name !== '.')) {
      expect(development).toContain(`${stage}/`)
    }
  })
})
