/**
 * kpipe's correction of @platformatic/kafka's read_committed filter, applied as the client's
 * consumer module is loaded: nothing in node_modules is rewritten (docs/decisions.md, "The
 * read_committed correction at load time"; the upstream report is docs/upstream/).
 *
 * The client (1.x, and 2.12.1 still) keeps one aborted range per producer id per fetch response:
 * the first offset of the last aborted transaction listed, up to the last ABORT marker in the
 * response. When one producer id has several aborted transactions in a response — a transactional
 * id that survived a few crashes, as `kpipe logins process --exactly-once` does — committed
 * records between them are dropped and aborted ones delivered. The replacement pairs each aborted
 * transaction with its own producer's next ABORT marker, as Kafka's protocol defines, and keeps
 * the client's choice to leave a range whose marker is not in this response unfiltered.
 *
 * This module must not import the client: it is registered before the client is first loaded
 * (bin/kpipe.js; test/client-correction.setup.ts under vitest).
 */
import { registerHooks } from 'node:module'

/** The client version whose consumer this corrects; package.json pins it. */
export const CORRECTED_CLIENT_VERSION = '2.12.1'

/** Found in the corrected class's source text (Function.prototype.toString keeps comments). */
export const CORRECTION_MARK = 'kpipe: read_committed, one range per aborted transaction'

const MODULE_SUFFIX = '/@platformatic/kafka/dist/clients/consumer/consumer.js'
const METHOD_START = '    #filterUncommittedMessages(response) {\n'
const NEXT_METHOD = '    #getRejoinError(error) {\n'
/** the statement that keeps one range per producer id: the bug */
const BUGGY = 'abortedRanges.set(aborted.producerId, [aborted.firstOffset, -1n]);'

const CORRECTED_METHOD = `    #filterUncommittedMessages(response) {
        /* ${CORRECTION_MARK} (kpipe's correction, see its docs/upstream/) */
        for (const topic of response.responses) {
            for (const partition of topic.partitions) {
                const abortedTransactions = partition.abortedTransactions ?? [];
                if (!partition.records || !abortedTransactions.length) {
                    continue;
                }
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
                for (const aborted of abortedTransactions) {
                    const end = markers.get(aborted.producerId)?.find(offset => offset >= aborted.firstOffset);
                    if (end === undefined) {
                        continue; // no marker in this response: left unfiltered, as the client does
                    }
                    let list = ranges.get(aborted.producerId);
                    if (!list) {
                        list = [];
                        ranges.set(aborted.producerId, list);
                    }
                    list.push([aborted.firstOffset, end]);
                }
                // Control records stay: the MessagesStream needs them to advance its offsets
                partition.records = partition.records.filter(batch => {
                    if (batch.attributes & IS_CONTROL) {
                        return true;
                    }
                    const list = ranges.get(batch.producerId);
                    return !list || !list.some(([first, end]) => batch.firstOffset >= first && batch.firstOffset < end);
                });
            }
        }
    }
`

/** True for the client's consumer module, wherever the package manager put it. */
export function isConsumerModule(url: string): boolean {
  return url.endsWith(MODULE_SUFFIX)
}

/** The consumer module's source with the filter corrected; throws when it is not the code this corrects. */
export function correctConsumerSource(source: string, where = 'the @platformatic/kafka consumer'): string {
  if (source.includes(CORRECTION_MARK)) return source
  const start = source.indexOf(METHOD_START)
  const end = source.indexOf(NEXT_METHOD, start)
  if (start < 0 || end < 0 || !source.slice(start, end).includes(BUGGY)) {
    throw new Error(
      `kpipe: ${where} is not @platformatic/kafka ${CORRECTED_CLIENT_VERSION}, whose read_committed filter kpipe corrects; ` +
        `reinstall kpipe (npm install) so that its pinned client is used`,
    )
  }
  return source.slice(0, start) + CORRECTED_METHOD + source.slice(end)
}

let registered = false

/** Corrects the client's consumer module as this process loads it (import or require). Idempotent. */
export function registerClientCorrection(): void {
  if (registered) return
  registered = true
  registerHooks({
    load(url, context, nextLoad) {
      const result = nextLoad(url, context)
      if (!isConsumerModule(url) || result.source === undefined) return result
      const source = typeof result.source === 'string' ? result.source : Buffer.from(result.source as Uint8Array).toString('utf8')
      return { ...result, source: correctConsumerSource(source, url) }
    },
  })
}
