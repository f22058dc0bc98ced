// Every test worker loads the Kafka client as kpipe's CLI runs it: with the read_committed
// corrections, the record-batch encoder, the lean consumed messages, the lineage passed through and
// the transaction looking at each partition of a send once (the CLI's bundle has them from the build,
// scripts/bundle.mjs; the sources get them from this load hook; docs/decisions.md).
import { registerClientCorrection } from '../src/shell/kafka/client-correction.ts'

registerClientCorrection()
