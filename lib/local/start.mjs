// `npm start`'s entry: the relay's code is TypeScript that only Node 24 runs as is (type
// stripping). An older Node cannot even open a .ts file, so this plain module checks first and
// says what to do in one line, before loading lib/local/start.ts.
// https://nodejs.org/api/typescript.html#type-stripping
const major = Number(process.versions.node.split('.')[0])
if (major < 24) {
  console.error(
    `segment-courier-relay needs Node 24; this is Node ${process.versions.node}. Run \`npm start\` (its scripts use the Node 24 that \`npm install\` put in node_modules).`,
  )
  process.exit(1)
}
await import('./start.ts')
