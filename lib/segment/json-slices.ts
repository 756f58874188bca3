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
