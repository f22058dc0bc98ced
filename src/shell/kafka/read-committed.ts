import { Consumer } from '@platformatic/kafka'
import { SetupError } from '../errors.ts'
import { CORRECTION_MARK } from './client-correction.ts'

let corrected: boolean | undefined

/**
 * Every read_committed consumer of kpipe checks this first: the client loaded in this process
 * carries kpipe's read_committed correction (src/shell/kafka/client-correction.ts). Without it a
 * reader would drop committed records and deliver aborted ones, silently; this makes it loud.
 */
export function assertReadCommittedCorrected(): void {
  corrected ??= Function.prototype.toString.call(Consumer).includes(CORRECTION_MARK)
  if (!corrected) {
    throw new SetupError(
      'the Kafka client loaded in this process lacks kpipe\'s read_committed correction',
      'start kpipe through bin/kpipe.js (or register src/shell/kafka/client-correction.ts before the client loads)',
    )
  }
}
