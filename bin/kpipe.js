#!/usr/bin/env node
import { main } from '../dist/cli/main.js'

main(process.argv.slice(2)).then((code) => {
  if (typeof code === 'number') process.exitCode = code
  // The command has finished its work (a long-running one has stopped cleanly and committed);
  // a socket to a broker that went away must not keep the process alive past that.
  setTimeout(() => process.exit(), 2000).unref()
})
