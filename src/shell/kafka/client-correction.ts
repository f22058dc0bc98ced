/**
 * kpipe's correction of @platformatic/kafka's read_committed filter, applied as the client's
 * consumer module is loaded (under the tests) or bundled (scripts/bundle.mjs, the CLI that
 * bin/kpipe.js runs): nothing in node_modules is rewritten (docs/decisions.md, "The
 * read_committed correction at load time" and "The CLI runs from one bundle"; the upstream report
 * is docs/upstream/). The same functions put kpipe's record-batch encoder in front of the
 * client's (record-batch-encoder.ts below), and make the messages its consumer delivers lean
 * (LEAN_MESSAGES_MARK below).
 *
 * The same module gets a second correction (STABLE_OFFSETS_MARK below): the consumer asks for its
 * group's committed offsets as stable ones under read_committed, as KIP-447 defines.
 *
 * The producer passes a record's lineage through to the encoder (LINEAGE_MARK), and a transaction
 * looks at each partition of a send once instead of at every record (TRANSACTION_PARTITIONS_MARK).
 *
 * The client (1.x, and 2.12.1 still) keeps one aborted range per producer id per fetch response:
 * the first offset of the last aborted transaction listed, up to the last ABORT marker in the
 * response. When one producer id has several aborted transactions in a response — a transactional
 * id that survived a few crashes, as `kpipe logins process --exactly-once` does — committed
 * records between them are dropped and aborted ones delivered. The replacement pairs each aborted
 * transaction with its own producer's next ABORT marker, as Kafka's protocol defines, and keeps
 * the client's choice to leave a range whose marker is not in this response unfiltered.
 *
 * This module must not import the client: its hook is registered before the client is first
 * loaded (test/client-correction.setup.ts under vitest), and the build imports it on the Node
 * that runs npm.
 */
// the module's default export: a named import of `registerHooks` would fail to link on Node 20,
// where the build (scripts/bundle.mjs) imports this module for its source corrections
import nodeModule from 'node:module'

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
        /*! ${CORRECTION_MARK} (kpipe's correction, see its docs/upstream/) */
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

/** Found in the client's `#listCommittedOffsets` once it asks for stable offsets under read_committed. */
export const STABLE_OFFSETS_MARK = 'kpipe: committed offsets read stable under read_committed, waited for in place'

/**
 * The client's consumer fetches its group's committed offsets (OffsetFetch) with `require_stable`
 * false, always. A transactional offset becomes the group's only once the transaction's commit
 * marker is written, after EndTxn has been answered: a member that reads the offsets in between
 * gets the offset before that transaction and processes its records again, and an exactly-once
 * pipeline writes their outputs twice. Kafka's Java consumer asks for stable offsets when it reads
 * committed (KIP-447): the broker then answers UNSTABLE_OFFSET_COMMIT while a transaction holds an
 * offset of the partition, and the consumer asks again, in place, until it is stable or its API
 * timeout has passed. The correction does the same: `require_stable` is the consumer's own
 * isolation level being read_committed (kpipe sets it as it sets the stream's), and the consumer
 * keeps asking for up to STABLE_OFFSETS_WAIT_MS, so that a rebalance between live members (whose
 * markers follow in milliseconds) never ends a session; after that it fails as before, and the
 * loop says why and starts a new session (a transaction left open by a process that ended).
 */
export const STABLE_OFFSETS_WAIT_MS = 10_000
/** between two rounds of the client's own retries (each round: four requests, 250 ms apart) */
const STABLE_OFFSETS_PAUSE_MS = 100
const LIST_COMMITS_SIGNATURE = '    #listCommittedOffsets(options, callback, staleMemberEpochRetries = 0) {\n'
const LIST_COMMITS_START = "        this.#performGroupOperation('listCommits', (connection, groupCallback) => {\n"
const LIST_COMMITS_UNSTABLE = `                        topics
                    }
                ], false, (error, response) => {
`
const LIST_COMMITS_STABLE = `                        topics
                    }
                ], kpipeRequireStable, (error, response) => {
`
const LIST_COMMITS_FAILED = `        }, (error, response) => {
            if (error) {
`
const LIST_COMMITS_STALE = '                        this.#listCommittedOffsets(options, callback, staleMemberEpochRetries + 1);\n'
const NEXT_AFTER_LIST_COMMITS = '    #findGroupCoordinator('

/** A client module that is not the code the hook rewrites: refused, with what to do. */
function notThePinnedClient(where: string, why: string): Error {
  return new Error(`kpipe: ${where} is not @platformatic/kafka ${CORRECTED_CLIENT_VERSION}, ${why}; reinstall kpipe (npm install) so that its pinned client is used`)
}

/** True for the client's consumer module, wherever the package manager put it. */
export function isConsumerModule(url: string): boolean {
  return url.endsWith(MODULE_SUFFIX)
}

/**
 * The consumer module's source with the filter corrected and its committed offsets read stable
 * under read_committed; throws when it is not the code this corrects.
 */
export function correctConsumerSource(source: string, where = 'the @platformatic/kafka consumer'): string {
  if (source.includes(CORRECTION_MARK) && source.includes(STABLE_OFFSETS_MARK)) return source
  const start = source.indexOf(METHOD_START)
  const end = source.indexOf(NEXT_METHOD, start)
  if (start < 0 || end < 0 || !source.slice(start, end).includes(BUGGY)) {
    throw notThePinnedClient(where, 'whose read_committed filter kpipe corrects')
  }
  const filtered = source.slice(0, start) + CORRECTED_METHOD + source.slice(end)
  // the committed-offset request: only within #listCommittedOffsets, each piece once
  const from = filtered.indexOf(LIST_COMMITS_SIGNATURE)
  const to = filtered.indexOf(NEXT_AFTER_LIST_COMMITS, from)
  const method = from < 0 || to < 0 ? '' : filtered.slice(from, to)
  if (![LIST_COMMITS_SIGNATURE, LIST_COMMITS_START, LIST_COMMITS_UNSTABLE, LIST_COMMITS_FAILED, LIST_COMMITS_STALE].every((piece) => method.split(piece).length === 2)) {
    throw notThePinnedClient(where, 'whose committed-offset request kpipe corrects')
  }
  const corrected = method
    .replace(LIST_COMMITS_SIGNATURE, `    #listCommittedOffsets(options, callback, staleMemberEpochRetries = 0, kpipeStableUntil = Date.now() + ${STABLE_OFFSETS_WAIT_MS}) {
`)
    .replace(LIST_COMMITS_START, `        /*! ${STABLE_OFFSETS_MARK} (kpipe's correction, see its docs/upstream/) */
        const kpipeRequireStable = this[kOptions].isolationLevel === FetchIsolationLevels.READ_COMMITTED;
` + LIST_COMMITS_START)
    .replace(LIST_COMMITS_UNSTABLE, LIST_COMMITS_STABLE)
    .replace(LIST_COMMITS_FAILED, LIST_COMMITS_FAILED + `                // a transaction still holds an offset: asked again, in place, until stable or the wait is over
                if (kpipeRequireStable && !this[kClosed] && Date.now() < kpipeStableUntil && findErrorBy(error, 'apiId', 'UNSTABLE_OFFSET_COMMIT')) {
                    setTimeout(() => {
                        if (this[kClosed]) {
                            callback(this.#handleError(error));
                            return;
                        }
                        this.#listCommittedOffsets(options, callback, staleMemberEpochRetries, kpipeStableUntil);
                    }, ${STABLE_OFFSETS_PAUSE_MS});
                    return;
                }
`)
    // the same wait, not a new one, after a stale member epoch is renewed
    .replace(LIST_COMMITS_STALE, '                        this.#listCommittedOffsets(options, callback, staleMemberEpochRetries + 1, kpipeStableUntil);\n')
  return filtered.slice(0, from) + corrected + filtered.slice(to)
}

/** Found in the client's `createRecordsBatch` once kpipe's encoder is in front of it. */
export const ENCODER_MARK = "kpipe: record batches written in one buffer"

const RECORDS_MODULE_SUFFIX = '/@platformatic/kafka/dist/protocol/records.js'
const CREATE_BATCH = 'export function createRecordsBatch(messages, options = {}) {\n'
/** where the client encodes records itself (uncompressed batches the encoder leaves to it, and every compressed one) */
const PREPARE_BATCH = 'function prepareRecordsBatch(messages, options) {\n'
/**
 * The client's uncompressed record-batch encoding, which src/shell/kafka/record-batch-encoder.ts
 * reproduces byte for byte: checked in full, so that a client whose format code differs in any
 * way is refused rather than written differently.
 */
const ENCODED_AS = [
  `export function createRecord(message, offsetDelta, firstTimestamp) {
    return Writer.create()
        .appendInt8(0) // Attributes are unused for now
        .appendVarInt64((message.timestamp ?? BigInt(Date.now())) - firstTimestamp)
        .appendVarInt(offsetDelta)
        .appendVarIntBytes(message.key)
        .appendVarIntBytes(message.value)
        .appendVarIntMap(message.headers, (w, [key, value]) => {
        w.appendVarIntBytes(key).appendVarIntBytes(value);
    })
        .prependVarIntLength();
}`,
  `        firstSequence = options.sequences.getWithDefault(\`\${firstMessage.topic}:\${firstMessage.partition}\`, 0);`,
  `    if (options.transactionalId) {
        attributes |= IS_TRANSACTIONAL;
    }`,
  `    const writer = Writer.create()
        // Phase 1: Prepare the message from Attributes (included) to the end
        .appendInt16(prepared.attributes)
        // LastOffsetDelta, FirstTimestamp and MaxTimestamp are extracted from the messages
        .appendInt32(messages.length - 1)
        .appendInt64(BigInt(prepared.firstTimestamp))
        .appendInt64(BigInt(prepared.maxTimestamp))
        .appendInt64(options.producerId ?? -1n)
        .appendInt16(options.producerEpoch ?? 0)
        .appendInt32(prepared.firstSequence)
        .appendInt32(messages.length) // Number of records
        .appendFrom(prepared.buffer);
    // Phase 2: Prepend the PartitionLeaderEpoch, Magic and CRC, then the Length and firstOffset, in reverse order
    return (writer
        .appendUnsignedInt32(crc32c(writer.dynamicBuffer), false)
        .appendInt8(CURRENT_RECORD_VERSION, false)
        .appendInt32(options.partitionLeaderEpoch ?? 0, false)
        .prependLength()
        // FirstOffset is 0
        .appendInt64(0n, false));`,
]

/** True for the client's protocol module that encodes record batches. */
export function isRecordsModule(url: string): boolean {
  return url.endsWith(RECORDS_MODULE_SUFFIX)
}

/**
 * The records module's source with kpipe's encoder in front of `createRecordsBatch` (the client's
 * own stays, exported as `clientCreateRecordsBatch`, for what the encoder leaves to it); throws
 * when it is not the code the encoder reproduces. Where the client encodes records itself (a batch
 * the encoder leaves to it, and every compressed batch, through `createRecordsBatch` or, for gzip,
 * `createRecordsBatchAsync`: both call `prepareRecordsBatch`), a record's lineage is first made the
 * Map of bytes the client writes (src/shell/kafka/lineage.ts). `encoder`: what the source imports
 * the encoder from (its URL for the load hook, its path for the bundler).
 */
export function correctRecordsSource(source: string, encoder: string, where = 'the @platformatic/kafka records module'): string {
  if (source.includes(ENCODER_MARK)) return source
  if (source.split(CREATE_BATCH).length !== 2 || source.split(PREPARE_BATCH).length !== 2 || !ENCODED_AS.every((text) => source.includes(text))) {
    throw notThePinnedClient(where, 'whose record batches kpipe writes')
  }
  const front = `export function createRecordsBatch(messages, options = {}) {
    /*! ${ENCODER_MARK} (src/shell/kafka/record-batch-encoder.ts) */
    const kpipeEncoded = kpipeEncodeRecordsBatch(messages, options, bytes => crc32c(new DynamicBuffer(bytes)));
    return kpipeEncoded === undefined ? clientCreateRecordsBatch(messages, options) : Writer.create().append(kpipeEncoded);
}
export function clientCreateRecordsBatch(messages, options = {}) {
`
  // a record's lineage, which the corrected producer passes through, made the Map of bytes the client writes
  const prepare = `${PREPARE_BATCH}    kpipeClientHeaders(messages);\n`
  return `import { encodeRecordsBatch as kpipeEncodeRecordsBatch, clientHeaders as kpipeClientHeaders } from ${JSON.stringify(encoder)};\n` +
    source.replace(CREATE_BATCH, front).replace(PREPARE_BATCH, prepare)
}

/** Found in the client's MessagesStream once its consumed messages are lean. */
export const LEAN_MESSAGES_MARK = 'kpipe: consumed messages without a closure or empty collections of their own'

const MESSAGES_STREAM_SUFFIX = '/@platformatic/kafka/dist/clients/consumer/messages-stream.js'
const PUSH_RECORDS_START = `    #pushRecords(metadata, topicIds, response, requestedOffsets) {
        const autocommit = this.#autocommitEnabled;
`
const PER_RECORD_COMMIT = `                        const commit = autocommit
                            ? noopCallback
                            : this.#commit.bind(this, topic, partition, offset + 1n, leaderEpoch);
`
const PER_RECORD_HEADERS = `                            const headers = new Map();
                            const headerEntries = [];
`
const ERROR_CONTEXT_COMMIT = `                                    commit: commit
                                };
`
const CORRUPTED_COMMIT = 'this.#corruptedMessageHandler(record, topic, partition, firstTimestamp, firstOffset, commit, error)'
const HEADERS_CLEARED = `                                        headers.clear();
                                        headerEntries.length = 0;
`
const MESSAGE_COMMIT = `                                leaderEpoch: batch.partitionLeaderEpoch,
                                commit,
`
const MESSAGE_END = `                                toJSON: messageToJSON
                            };
`

/** True for the client's MessagesStream module (the consumer's stream of messages). */
export function isMessagesStreamModule(url: string): boolean {
  return url.endsWith(MESSAGES_STREAM_SUFFIX)
}

/**
 * The MessagesStream module's source with lean consumed messages; throws when it is not the code
 * this changes. The client (2.12.1) gives every message it delivers a `commit` of its own (a bound
 * function with its arguments and a bigint, even where nobody calls it: kpipe commits its batches'
 * offsets itself), and a new headers Map and entries array, empty for a record without headers.
 * A message waits in the stream's buffer until the loop takes it, so these outlive the young
 * generation: they are copied by scavenges, promoted, and paid for again in the old space, which
 * grows to two and a half times what it holds (docs/benchmarks.md, "Memory, an eighth time"). Here one
 * `commit` per fetch response serves all its messages: it reads the message it is called on
 * (`message.commit()`, a method of the message as its type declares it; a detached call throws
 * and says so). Every record without headers shares one empty Map and array, which refuse
 * changes instead of passing them on to other messages (a key or value deserializer that adds a
 * header to a record without headers now fails; kpipe's do not touch headers). What a message
 * holds and does is otherwise the client's own.
 */
export function correctMessagesStreamSource(source: string, where = 'the @platformatic/kafka MessagesStream'): string {
  if (source.includes(LEAN_MESSAGES_MARK)) return source
  const pieces = [PUSH_RECORDS_START, PER_RECORD_COMMIT, PER_RECORD_HEADERS, ERROR_CONTEXT_COMMIT, CORRUPTED_COMMIT, HEADERS_CLEARED, MESSAGE_COMMIT, MESSAGE_END]
  if (!pieces.every((piece) => source.split(piece).length === 2)) {
    throw notThePinnedClient(where, 'whose consumed messages kpipe makes lean')
  }
  const shared = `/*! ${LEAN_MESSAGES_MARK} (src/shell/kafka/client-correction.ts) */
const kpipeCommitEpoch = Symbol('kpipe.commitLeaderEpoch');
function kpipeReadOnly() {
    throw new UserError('This message has no headers: its empty headers are shared by such messages and read-only; copy them (new Map(message.headers)) to change them.');
}
// a plain Map (equal to new Map() and printed as one) whose changes throw
const kpipeNoHeaders = new Map();
for (const name of ['set', 'delete', 'clear']) {
    Object.defineProperty(kpipeNoHeaders, name, { value: kpipeReadOnly });
}
const kpipeNoHeaderEntries = Object.freeze([]);
`
  return shared + source
    .replace(PUSH_RECORDS_START, PUSH_RECORDS_START + `        // one commit for the messages of this response: it commits the message it is called on
        const kpipeStream = this;
        const kpipeCommit = autocommit ? noopCallback : function commit(callback) {
            if (typeof this?.[kpipeCommitEpoch] !== 'number') {
                throw new UserError('Call commit on its message: message.commit().');
            }
            return kpipeStream.#commit(this.topic, this.partition, this.offset + 1n, this[kpipeCommitEpoch], callback);
        };
`)
    .replace(PER_RECORD_COMMIT, '')
    .replace(PER_RECORD_HEADERS, `                            const kpipeHeaderless = record.headers.length === 0;
                            let headers = kpipeHeaderless ? kpipeNoHeaders : new Map();
                            let headerEntries = kpipeHeaderless ? kpipeNoHeaderEntries : [];
`)
    // a record that could not be read: its own bound commit, as the client made it
    .replace(ERROR_CONTEXT_COMMIT, `                                    commit: autocommit ? noopCallback : this.#commit.bind(this, topic, partition, offset + 1n, leaderEpoch)
                                };
`)
    .replace(CORRUPTED_COMMIT, 'this.#corruptedMessageHandler(record, topic, partition, firstTimestamp, firstOffset, context.commit, error)')
    .replace(HEADERS_CLEARED, `                                        headers = new Map();
                                        headerEntries = [];
`)
    .replace(MESSAGE_COMMIT, `                                leaderEpoch: batch.partitionLeaderEpoch,
                                commit: kpipeCommit,
`)
    .replace(MESSAGE_END, `                                toJSON: messageToJSON,
                                [kpipeCommitEpoch]: leaderEpoch
                            };
`)
}

/** Found in the client's Producer once it passes a record's lineage through to kpipe's encoder. */
export const LINEAGE_MARK = "kpipe: a record's lineage written by kpipe's encoder"

const PRODUCER_SUFFIX = '/@platformatic/kafka/dist/clients/producer/producer.js'
const SEND_HEADERS = `            let headers = new Map();
            const serializedHeaders = new Map();
            const metadata = message.metadata;
            try {
                if (message.headers) {
                    headers =
                        message.headers instanceof Map
                            ? message.headers
                            : new Map(Object.entries(message.headers));
                    for (const [key, value] of headers) {
                        serializedHeaders.set(this.#headerKeySerializer(key, metadata), this.#headerValueSerializer(value, metadata));
                    }
                }
`
/** checked, not changed: the client's copy of a record takes its serialised headers, which a lineage then is */
const SEND_COPY = `            messages.push({
                key,
                value,
                headers: serializedHeaders,
`

/** True for the client's Producer module. */
export function isProducerModule(url: string): boolean {
  return url.endsWith(PRODUCER_SUFFIX)
}

/**
 * The Producer module's source with a record's lineage passed through as it is; throws when it is
 * not the code this changes. The client's `send` copies every record's headers into a Map of its
 * own, through the header serialisers, and kpipe's record-batch encoder then walks that Map; for
 * the processor's outputs, whose only headers are their lineage, that was two Maps and seven
 * calls per record. A `Lineage` (src/shell/kafka/lineage.ts) is handed on unchanged instead: the
 * encoder writes its bytes, and makes it the Map of bytes the client's own encoder reads for a
 * batch it leaves to the client (compressed ones). The key and value serialisers see the lineage
 * as the record's headers (it reads like a Map: `get`, `keys`, iteration). Every other record is
 * sent as the client sends it. `lineage`: what the source imports the Lineage class from (its URL
 * for the load hook, its path for the bundler).
 */
export function correctProducerSource(source: string, lineage: string, where = 'the @platformatic/kafka Producer'): string {
  if (source.includes(LINEAGE_MARK)) return source
  if (![SEND_HEADERS, SEND_COPY].every((piece) => source.split(piece).length === 2)) {
    throw notThePinnedClient(where, "whose records' lineage kpipe writes")
  }
  // the client's own lines, two of them changed: a lineage is its own serialised headers, and is not copied
  const send = SEND_HEADERS
    .replace('            let headers = new Map();\n            const serializedHeaders = new Map();\n', `            /*! ${LINEAGE_MARK} (src/shell/kafka/lineage.ts) */
            const kpipeLineage = kpipeIsLineage(message.headers);
            let headers = kpipeLineage ? message.headers : new Map();
            const serializedHeaders = kpipeLineage ? message.headers : new Map();
`)
    .replace('                if (message.headers) {\n', '                if (message.headers && !kpipeLineage) {\n')
  return `import { isLineage as kpipeIsLineage } from ${JSON.stringify(lineage)};\n` + source.replace(SEND_HEADERS, send)
}

/** Found in the client's Transaction once it tells the partitions a send adds without a string per record. */
export const TRANSACTION_PARTITIONS_MARK = 'kpipe: the partitions a transactional send adds, found once per partition'

const TRANSACTION_SUFFIX = '/@platformatic/kafka/dist/clients/producer/transaction.js'
/** the client's loop over a transactional send's records: a `topic:partition` string made and looked up for each */
const ADD_PARTITIONS_SCAN = `        for (const message of messages) {
            message.partition %= metadata.topics.get(message.topic).partitionsCount;
            const { topic, partition } = message;
            const key = \`\${topic}:\${partition}\`;
            if (!this.#partitions.has(key)) {
`

/** True for the client's Transaction module. */
export function isTransactionModule(url: string): boolean {
  return url.endsWith(TRANSACTION_SUFFIX)
}

/**
 * The Transaction module's source with `addPartitions` looking at each partition of a send once;
 * throws when it is not the code this changes. The producer calls it before every transactional
 * send, with all the send's records, and the client made a `topic:partition` string and looked it
 * up for each record (0.35 µs per record, 2.5 % of the exactly-once processor's CPU profile),
 * though a send of thousands of records goes to a handful of partitions. The replacement keeps,
 * per call, the partitions it has looked at (and each topic's partition count): a record to one of
 * them is taken modulo the count, as before, and nothing more. What the transaction adds, and every
 * record's partition, are the same.
 */
export function correctTransactionSource(source: string, where = 'the @platformatic/kafka Transaction'): string {
  if (source.includes(TRANSACTION_PARTITIONS_MARK)) return source
  if (source.split(ADD_PARTITIONS_SCAN).length !== 2) throw notThePinnedClient(where, 'whose transactional sends kpipe makes cheaper')
  return source.replace(ADD_PARTITIONS_SCAN, `        /*! ${TRANSACTION_PARTITIONS_MARK} */
        const kpipeLooked = new Map();
        for (const message of messages) {
            let kpipeTopic = kpipeLooked.get(message.topic);
            if (kpipeTopic === undefined) {
                kpipeTopic = { count: metadata.topics.get(message.topic).partitionsCount, seen: new Set() };
                kpipeLooked.set(message.topic, kpipeTopic);
            }
            message.partition %= kpipeTopic.count;
            const { topic, partition } = message;
            if (kpipeTopic.seen.has(partition)) {
                continue;
            }
            kpipeTopic.seen.add(partition);
            const key = \`\${topic}:\${partition}\`;
            if (!this.#partitions.has(key)) {
`)
}

/** Which of the client's modules kpipe changes (the build counts each), and how. */
export type CorrectedModule = 'consumer' | 'records' | 'messages' | 'producer' | 'transaction'

/** Where the corrected client imports kpipe's modules from: their URLs (load hook) or paths (bundler). */
export interface KpipeModules {
  encoder: string
  lineage: string
}

/**
 * The correction of the client's module at `url`, or undefined for a module kpipe leaves as it
 * is: the one place that says which module gets which, for the load hook below and the build
 * (scripts/bundle.mjs). `kpipe`: where the records and producer modules import kpipe's encoder and
 * Lineage from.
 */
export function clientCorrectionOf(url: string, kpipe: KpipeModules): { module: CorrectedModule; correct(source: string): string } | undefined {
  if (isConsumerModule(url)) return { module: 'consumer', correct: (source) => correctConsumerSource(source, url) }
  if (isRecordsModule(url)) return { module: 'records', correct: (source) => correctRecordsSource(source, kpipe.encoder, url) }
  if (isMessagesStreamModule(url)) return { module: 'messages', correct: (source) => correctMessagesStreamSource(source, url) }
  if (isProducerModule(url)) return { module: 'producer', correct: (source) => correctProducerSource(source, kpipe.lineage, url) }
  if (isTransactionModule(url)) return { module: 'transaction', correct: (source) => correctTransactionSource(source, url) }
  return undefined
}

/** kpipe's encoder and Lineage, next to this module (.js in the build, .ts where the sources run). */
const EXTENSION = import.meta.url.slice(import.meta.url.lastIndexOf('.'))
const KPIPE_URLS: KpipeModules = {
  encoder: new URL(`./record-batch-encoder${EXTENSION}`, import.meta.url).href,
  lineage: new URL(`./lineage${EXTENSION}`, import.meta.url).href,
}

let registered = false

/**
 * Corrects the client's consumer module, puts kpipe's record-batch encoder in front of the
 * client's, makes its consumed messages lean, has its producer pass records' lineage through, and
 * its transactions look at each partition of a send once, as this process loads them (import or
 * require).
 * Idempotent.
 */
export function registerClientCorrection(): void {
  if (registered) return
  registered = true
  nodeModule.registerHooks({
    load(url, context, nextLoad) {
      const result = nextLoad(url, context)
      if (result.source === undefined) return result
      const correction = clientCorrectionOf(url, KPIPE_URLS)
      if (!correction) return result
      const source = typeof result.source === 'string' ? result.source : Buffer.from(result.source as Uint8Array).toString('utf8')
      return { ...result, source: correction.correct(source) }
    },
  })
}
