// Corrects @platformatic/kafka 1.35's read_committed filter (Consumer#filterUncommittedMessages).
//
// The client keeps one aborted range per producer id per fetch response: the first offset of the
// last aborted transaction listed, up to the last ABORT marker in the response. When one producer
// id has several aborted transactions in a response — a transactional id that survived a few
// crashes, as `kpipe logins process --exactly-once` does — committed records between them are
// dropped and aborted ones delivered: a read_committed reader sees loss and duplicates that are
// not in the log (Kafka's own consumer reads the same partitions correctly). The replacement
// pairs each aborted transaction with its own ABORT marker, as Kafka's protocol defines, and
// keeps the client's choice to leave a range without a marker in this response unfiltered.
//
// Runs after `npm install`; idempotent; says so, and fails, when the file is not the one expected.
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)
// the package's entry point is dist/index.js (its package.json is not exported)
const file = join(dirname(require.resolve('@platformatic/kafka')), 'clients', 'consumer', 'consumer.js')
const source = readFileSync(file, 'utf8')
const MARK = '/* kpipe: one range per aborted transaction */'
if (source.includes(MARK)) process.exit(0)

const start = source.indexOf('                if (partition.abortedTransactions.length) {')
const end = source.indexOf('                // Important: The control records are not filtered here')
if (start < 0 || end < start || !source.slice(start, end).includes('abortedRanges.set(aborted.producerId')) {
  console.error(`kpipe: ${file} is not the @platformatic/kafka 1.35 consumer this project corrects; check its read_committed filtering (see scripts/patch-kafka-client.mjs)`)
  process.exit(1)
}

const replacement = `                if (partition.abortedTransactions.length) {
                    ${MARK}
                    // ABORT markers of each producer in this response, in offset order
                    const markers = new Map();
                    for (const batch of partition.records) {
                        if (batch.attributes & IS_CONTROL && batch.records[0].key?.readInt16BE(2) === 0) {
                            let list = markers.get(batch.producerId);
                            if (!list) {
                                list = [];
                                markers.set(batch.producerId, list);
                            }
                            list.push(batch.firstOffset);
                        }
                    }
                    // each aborted transaction spans from its first offset to its producer's next ABORT marker
                    const ranges = new Map();
                    for (const aborted of partition.abortedTransactions) {
                        const end = markers.get(aborted.producerId)?.find(offset => offset >= aborted.firstOffset);
                        if (end === undefined) {
                            continue; // no marker in this response: left as it is, as before
                        }
                        let list = ranges.get(aborted.producerId);
                        if (!list) {
                            list = [];
                            ranges.set(aborted.producerId, list);
                        }
                        list.push([aborted.firstOffset, end]);
                    }
                    partition.records = partition.records.filter(batch => {
                        if (batch.attributes & IS_CONTROL) {
                            return true;
                        }
                        const list = ranges.get(batch.producerId);
                        return !list || !list.some(([first, end]) => batch.firstOffset >= first && batch.firstOffset < end);
                    });
                }
`
writeFileSync(file, source.slice(0, start) + replacement + source.slice(end))
console.log('kpipe: corrected the read_committed filter of @platformatic/kafka (scripts/patch-kafka-client.mjs)')
