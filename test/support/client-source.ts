import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

/** The source of one of the pinned Kafka client's modules as it is in node_modules (`path` below its dist/, e.g. 'protocol/records.js'). */
export function clientModuleSource(path: string): string {
  const main = createRequire(import.meta.url).resolve('@platformatic/kafka')
  return readFileSync(main.replace(/index\.js$/, path), 'utf8')
}
