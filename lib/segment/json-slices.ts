/**
 * Finds the exact source text of each element of a JSON array, so every queued event is
 * byte-for-byte what Segment sent (no re-serialisation that could reorder keys, change number
 * formatting or unicode escapes). The input must already be known to be valid JSON: this scans
 * structure only and trusts the parser for the rest.
 */

const WHITESPACE = new Set([' ', '\t', '\n', '\r'])

const skipWhitespace = (text: string, index: number): number => {
  let i = index
  while (i < text.length && WHITESPACE.has(text[i] as string)) i++
  return i
}

/** Index just past the JSON value that starts at `start` (whitespace already skipped). */
const endOfValue = (text: string, start: number): number => {
  const first = text[start]
  if (first === '"') {
    let i = start + 1
    while (i < text.length) {
      const ch = text[i]
      if (ch === '\\') i += 2
      else if (ch === '"') return i + 1
      else i++
    }
    return text.length
  }
  if (first === '{' || first === '[') {
    let depth = 0
    let i = start
    while (i < text.length) {
      const ch = text[i]
      if (ch === '"') {
        i = endOfValue(text, i)
        continue
      }
      if (ch === '{' || ch === '[') depth++
      else if (ch === '}' || ch === ']') {
        depth--
        if (depth === 0) return i + 1
      }
      i++
    }
    return text.length
  }
  let i = start
  while (
    i < text.length &&
    !WHITESPACE.has(text[i] as string) &&
    text[i] !== ',' &&
    text[i] !== ']' &&
    text[i] !== '}'
  ) {
    i++
  }
  return i
}

/** The source text of each element of the array that starts at `start`. */
export const arrayElementSlices = (text: string, start: number): string[] => {
  const slices: string[] = []
  let i = skipWhitespace(text, start + 1)
  if (text[i] === ']') return slices
  while (i < text.length) {
    i = skipWhitespace(text, i)
    const end = endOfValue(text, i)
    slices.push(text.slice(i, end))
    i = skipWhitespace(text, end)
    if (text[i] !== ',') break
    i++
  }
  return slices
}

/** The exact source text of the value of `key` in the top-level object `text`, if it has one. */
export const objectValueText = (text: string, key: string): string | undefined => {
  const start = objectValueStart(text, key)
  return start === undefined ? undefined : text.slice(start, endOfValue(text, start))
}

/** Where the value of `key` starts in the top-level object `text`; the last one wins, as in JSON.parse. */
export const objectValueStart = (text: string, key: string): number | undefined => {
  let i = skipWhitespace(text, 0)
  if (text[i] !== '{') return undefined
  i = skipWhitespace(text, i + 1)
  let found: number | undefined
  while (i < text.length && text[i] === '"') {
    const keyEnd = endOfValue(text, i)
    const name = JSON.parse(text.slice(i, keyEnd)) as string
    i = skipWhitespace(text, keyEnd)
    i = skipWhitespace(text, i + 1) // past ':'
    if (name === key) found = i
    i = skipWhitespace(text, endOfValue(text, i))
    if (text[i] !== ',') break
    i = skipWhitespace(text, i + 1)
  }
  return found
}

/** The source text of the first element of the array that starts at `start`, if it has one. */
export const firstElementText = (text: string, start: number): string | undefined => {
  const i = skipWhitespace(text, start + 1)
  if (i >= text.length || text[i] === ']') return undefined
  return text.slice(i, endOfValue(text, i))
}

/** A key's name as JSON.parse reads it: escapes decoded, so `"user\u0049d"` is `userId`. */
const keyName = (slice: string): string =>
  slice.includes('\\') ? (JSON.parse(slice) as string) : slice.slice(1, -1)

const OPEN_BRACE = 0x7b
const OPEN_BRACKET = 0x5b
const QUOTE = 0x22
const BACKSLASH = 0x5c
const COLON = 0x3a

/** Index just past the string whose opening quote is at `start` (an escaped quote does not end it). */
const stringEnd = (text: string, start: number): number => {
  let from = start + 1
  for (;;) {
    const quote = text.indexOf('"', from)
    if (quote === -1) return text.length
    let backslashes = 0
    while (text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes++
    if (backslashes % 2 === 0) return quote + 1
    from = quote + 1
  }
}

const CLOSE_BRACE = 0x7d
const CLOSE_BRACKET = 0x5d

/**
 * Calls `visit` for each bracket and each string (with its end), in order, tracking the nesting
 * depth; stops when `visit` returns true and says so. A string's content is skipped with indexOf,
 * so most of an event (its keys and values) is never walked character by character in JS.
 */
const scan = (
  text: string,
  visit: (at: number, code: number, depth: number, end: number) => boolean,
): boolean => {
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code === QUOTE) {
      const end = stringEnd(text, i)
      if (visit(i, code, depth, end)) return true
      i = end - 1
    } else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
      depth++
      if (visit(i, code, depth, i + 1)) return true
    } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
      depth--
      if (visit(i, code, depth, i + 1)) return true
    }
  }
  return false
}

/** The names of the top-level object's keys, in order, duplicates included (JSON.parse keeps only the last). */
export const topLevelKeys = (text: string): string[] => {
  const keys: string[] = []
  if (text[skipWhitespace(text, 0)] !== '{') return keys
  scan(text, (at, code, depth, end) => {
    if (code === QUOTE) {
      // A string directly in the top-level object is a key when a colon follows it.
      if (depth === 1 && text.charCodeAt(skipWhitespace(text, end)) === COLON) {
        keys.push(keyName(text.slice(at, end)))
      }
      return false
    }
    return depth === 0
  })
  return keys
}

/**
 * Whether any object or array in `text` nests deeper than `maxDepth` (the outermost value is
 * depth 1). One pass, no recursion, so it is safe on any body before it is parsed: JSON.stringify
 * and every other recursive reader of the parsed value then stay far from the stack limit. Works
 * on any text, JSON or not.
 */
export const nestsDeeperThan = (text: string, maxDepth: number): boolean =>
  scan(text, (_at, code, depth) => code !== QUOTE && depth > maxDepth)
