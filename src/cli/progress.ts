import type { ResolveProgress } from '../shell/broker/jars.ts'
import { KAFKA_VERSION } from '../shell/broker/jars.ts'

/** A status line on stderr: rewritten in place on a terminal, one line per update otherwise. */
export function statusLine(stream: NodeJS.WriteStream = process.stderr) {
  let last = 0
  return {
    update(text: string) {
      if (stream.isTTY) stream.write(`\r\x1b[2K${text}`)
      else if (Date.now() - last > 2000) {
        stream.write(`${text}\n`)
        last = Date.now()
      }
    },
    done(text: string) {
      stream.write(stream.isTTY ? `\r\x1b[2K${text}\n` : `${text}\n`)
    },
  }
}

export function jarProgress(): ResolveProgress {
  const line = statusLine()
  return (event) => {
    if (event.kind === 'start') process.stderr.write(`kafka: resolving Apache Kafka ${KAFKA_VERSION} jars with Maven (first run only)\n  ${event.command}\n`)
    else if (event.kind === 'download') line.update(`kafka: ${event.count} files downloaded (${event.artifact})`)
    else if (!event.cached) line.done(`kafka: ${event.jars} jars ready`)
  }
}
