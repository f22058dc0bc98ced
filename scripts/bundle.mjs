// Part of `npm run build`, after tsc: the CLI as one bundle (dist/bundle/main.js and the chunks its
// commands load), which bin/kpipe.js runs. Each loaded ES module costs its own records in V8's
// heap (~9 KB each, ~1,000 modules for `kpipe logins process`, most of them the Kafka client's,
// zod's and ajv's): bundled, the processor starts with an old space of ~11 MB instead of ~22, and
// its old space grows from there (docs/decisions.md, "The CLI runs from one bundle").
//
// - The Kafka client is bundled with kpipe's corrections applied here, by the same functions the
//   load hook uses (src/shell/kafka/client-correction.ts); the build fails when the client is not
//   the one they correct, or when any correction is missing from the output.
// - Packages that find files of their own at run time (WebAssembly, workers, native addons,
//   transports) stay in node_modules and are imported from there; those of them the client
//   imports are kpipe's own dependencies too, so that they resolve from dist/bundle.
// - kpipe's own modules keep the `import.meta.url` of their compiled file in dist/, so paths found
//   relative to them (the rules thread's worker, the dashboard's page, Kafka's pom.xml, bin/) are
//   the same bundled or not.
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'rolldown'
import {
  CORRECTION_MARK,
  ENCODER_MARK,
  LEAN_MESSAGES_MARK,
  LINEAGE_MARK,
  STABLE_OFFSETS_MARK,
  TRANSACTION_PARTITIONS_MARK,
  clientCorrectionOf,
} from '../dist/shell/kafka/client-correction.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const DIST = join(ROOT, 'dist')
const OUT = join(DIST, 'bundle')
const KPIPE_MODULES = {
  encoder: join(DIST, 'shell', 'kafka', 'record-batch-encoder.js'),
  lineage: join(DIST, 'shell', 'kafka', 'lineage.js'),
}

/** Imported from node_modules at run time: they read files beside themselves or start workers. */
const EXTERNAL = new Set([
  '@electric-sql/pglite', // its WebAssembly and data files
  '@node-rs/crc32', // a native addon
  '@platformatic/wasm-utils', // its WebAssembly file
  '@platformatic/dynamic-buffer', // one copy: wasm-utils's instances are told apart by a symbol of this module's own
  'fastify', // pino's transports and its plugins' files
  'pg', // the optional native binding
  'pg-copy-streams',
  'pino',
  'pino-pretty',
  'thread-stream',
  'uplot',
])

/** `@scope/name` or `name` of a bare import specifier. */
function packageOf(specifier) {
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
}

const corrected = { consumer: 0, records: 0, messages: 0, producer: 0, transaction: 0 }

rmSync(OUT, { recursive: true, force: true })
await build({
  input: { main: join(DIST, 'cli', 'main.js') },
  platform: 'node',
  external: (id) => !id.startsWith('.') && !id.startsWith('/') && !id.startsWith('\0') && EXTERNAL.has(packageOf(id)),
  output: {
    dir: OUT,
    format: 'esm',
    // V8 keeps a module's source for the process's lifetime, as two bytes per character if any one
    // character of it is beyond Latin-1 (one "—" in a comment doubled the client's chunk, 1.3 MB): the
    // output is ASCII (non-ASCII escaped in strings), and without doc comments, the place most of the
    // rest were (the licences' comments stay)
    charset: 'ascii',
    comments: { legal: true, annotation: false, jsdoc: false },
    entryFileNames: '[name].js',
    chunkFileNames: '[name]-[hash].js',
    sourcemap: false,
  },
  plugins: [
    {
      name: 'kpipe-client-correction',
      transform(code, id) {
        const correction = clientCorrectionOf(pathToFileURL(id).href, KPIPE_MODULES)
        if (!correction) return null
        corrected[correction.module]++
        return correction.correct(code)
      },
    },
    {
      name: 'kpipe-module-urls',
      transform(code, id) {
        if (!id.startsWith(DIST + sep) || !code.includes('import.meta.url')) return null
        const compiled = relative(OUT, id).split(sep).join('/')
        return code.replaceAll('import.meta.url', `new URL(${JSON.stringify(compiled)}, import.meta.url).href`)
      },
    },
  ],
})

const chunks = readdirSync(OUT)
  .filter((file) => file.endsWith('.js'))
  .map((file) => ({ file, text: readFileSync(join(OUT, file), 'utf8') }))
const output = chunks.map(({ text }) => text).join('\n')
const missing = [
  // the marks as the corrections write them (the constants alone are in the bundle too)
  corrected.consumer === 1 && output.includes(`/*! ${CORRECTION_MARK}`) ? undefined : "the client's read_committed correction",
  corrected.consumer === 1 && output.includes(`/*! ${STABLE_OFFSETS_MARK}`) ? undefined : "the client's stable committed offsets",
  corrected.records === 1 && output.includes(`/*! ${ENCODER_MARK}`) ? undefined : "kpipe's record-batch encoder",
  corrected.messages === 1 && output.includes(`/*! ${LEAN_MESSAGES_MARK}`) ? undefined : "the client's lean consumed messages",
  corrected.producer === 1 && output.includes(`/*! ${LINEAGE_MARK}`) ? undefined : "the producer's lineage passed through",
  corrected.transaction === 1 && output.includes(`/*! ${TRANSACTION_PARTITIONS_MARK}`) ? undefined : "the transaction's partitions found once each",
].filter(Boolean)
if (missing.length > 0) {
  process.stderr.write(`bundle: ${missing.join(' and ')} missing from dist/bundle\n`)
  process.exit(1)
}

// Every chunk one byte per character in V8 (Latin-1): `charset: 'ascii'` escapes strings, not the
// licences' comments the output keeps, where a character beyond Latin-1 would double its chunk.
for (const { file, text } of chunks) {
  const beyond = /[\u{100}-\u{10ffff}]/u.exec(text)
  if (beyond) {
    process.stderr.write(`bundle: dist/bundle/${file} has a character beyond Latin-1 (${JSON.stringify(beyond[0])}), which V8 would keep as a two-byte source\n`)
    process.exit(1)
  }
}
