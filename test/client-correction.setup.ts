// Every test worker loads the Kafka client as kpipe's CLI does: with the read_committed
// correction registered first (bin/kpipe.js does the same; docs/decisions.md).
import { registerClientCorrection } from '../src/shell/kafka/client-correction.ts'

registerClientCorrection()
