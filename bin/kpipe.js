#!/usr/bin/env node
import { fileURLToPath } from 'node:url'
import { isSupported, runWith, supportedNode } from './node-runtime.js'

if (!isSupported()) {
  // An older Node.js (20 on many machines): run this same command on Node.js 24 (bin/node-runtime.js).
  try {
    const node = supportedNode()
    process.exitCode = await runWith(node, node, [fileURLToPath(import.meta.url), ...process.argv.slice(2)])
  } catch (error) {
    process.stderr.write(`${error.message}\n`)
    process.exitCode = 1
  }
} else {
  // A command that opens embedded PGlite, and the login processor, start over with the V8 flags
  // they need, same pid (src/cli/node-flags.ts); a flag the user sets is left to the user.
  const { restartFlags } = await import('../dist/cli/node-flags.js')
  const flags = typeof process.execve === 'function' ? restartFlags(process.argv.slice(2), process.env, process.execArgv) : undefined
  if (flags) process.execve(process.execPath, [process.execPath, ...flags, ...process.execArgv, ...process.argv.slice(1)], process.env)
  // A reader that stopped reading (kpipe tail | head): end quietly with 0, as a pager's writer
  // should, instead of an EPIPE stack; there is no one left to tell.
  process.stdout.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(0)
    throw error
  })
  // The CLI as one bundle, the Kafka client in it with kpipe's corrections (scripts/bundle.mjs).
  const { main } = await import('../dist/bundle/main.js')
  const code = await main(process.argv.slice(2))
  if (typeof code === 'number') process.exitCode = code
  // The command has finished its work (a long-running one has stopped cleanly and committed);
  // a socket to a broker that went away must not keep the process alive past that.
  setTimeout(() => process.exit(), 2000).unref()
}
