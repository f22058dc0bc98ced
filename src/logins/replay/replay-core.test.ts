import { describe, expect, it } from 'vitest'
import { UserError } from '../../shell/errors.ts'
import { errorRecord } from '../core/error-record.ts'
import { transformLogin } from '../core/transform-login.ts'
import type { FailedLogin, LoginRules } from '../core/login-event.ts'
import { decodeParked, parseCoordinates, UNREADABLE, type ParkedInput, type ParkedRecord } from './parked-record.ts'
import { planReplay, replayOutput, selects, type OriginalLookup } from './replay-plan.ts'
import { formatDryRun, maskedPreview, predictOutcome, ReplayTally } from './replay-report.ts'
import { parseReplayRequest, parseTime, type ReplayFlags } from './replay-request.ts'
import { replayVerdict } from './run-replay.ts'

const TOPICS = { TOPIC_LOGINS: 'user-login', TOPIC_ERRORS: 'processed-errors', TOPIC_CLEANED: 'cleaned-data' }
const NOW = Date.parse('2026-12-04T12:00:00Z')
const HOUR = 3_600_000
const rules: LoginRules = { hashKey: 'k'.repeat(16), maxMessageAgeSeconds: 0, allowedAppVersions: new Set(['2.3.0']) }

const request = (flags: Partial<ReplayFlags>) => parseReplayRequest({ from: 'processed-errors', ...flags }, TOPICS, NOW)
const refusal = (flags: Partial<ReplayFlags>) => {
  try {
    request(flags)
  } catch (error) {
    expect(error).toBeInstanceOf(UserError)
    expect((error as Error).message).not.toContain('\n')
    return (error as Error).message
  }
  throw new Error(`accepted ${JSON.stringify(flags)}`)
}

describe('replay flags', () => {
  it.each<[string, Partial<ReplayFlags>, RegExp]>([
    ['an unknown --from', { from: 'processed-output' }, /--from: "processed-output": expected processed-errors or cleaned-data/],
    ['an unknown error type', { errorType: ['bad_json'] }, /unknown --error-type "bad_json": expected one of invalid_json, missing_fields, invalid_field/],
    ['an unknown reason', { from: 'cleaned-data', reason: ['old'] }, /unknown --reason "old": expected one of stale, app_version/],
    ['a reason for dead letters', { reason: ['stale'] }, /--reason selects filtered events of cleaned-data/],
    ['an error type for filtered events', { from: 'cleaned-data', errorType: ['invalid_json'] }, /--error-type selects error records of processed-errors/],
    ['a time that is neither', { since: 'yesterday' }, /--since: "yesterday": expected an ISO-8601 time .* or a time ago/],
    ['since after until', { since: '1h', until: '2h' }, /--since 1h is not before --until 2h/],
    ['a topic name that cannot be one', { to: 'a b' }, /--to: "a b": expected a topic name/],
    ['an output of the processor as target', { to: 'cleaned-data' }, /--to cleaned-data is an output of the processor/],
    ['an id with spaces', { id: 'my replay' }, /--id: "my replay"/],
  ])('refuses %s in one line', (_what, flags, message) => {
    expect(refusal(flags)).toMatch(message)
  })

  it.each<[Partial<ReplayFlags>, string]>([
    [{}, 'errors-all'],
    [{ errorType: ['missing_fields', 'invalid_json', 'invalid_json'] }, 'errors-invalid_json+missing_fields'],
    [{ from: 'cleaned-data', reason: ['app_version'] }, 'cleaned-app_version'],
    [{ from: 'cleaned-data', reason: ['app_version'], since: '2h', limit: 10 }, 'cleaned-app_version-since-2h'],
    [{ since: '2026-12-01T08:00:00Z', until: '2026-12-02' }, 'errors-all-since-2026-12-01T08_00_00Z-until-2026-12-02'],
    [{ to: 'user-login-test' }, 'errors-all-to-user-login-test'],
    [{ to: 'user-login' }, 'errors-all'],
    [{ errorType: ['invalid_json'], id: 'fix-1234' }, 'fix-1234'],
  ])('names the replay from its filters as written: %j → %s', (flags, id) => {
    expect(request(flags).id).toBe(id)
  })

  it('selects by the configured topic names as well as the roles', () => {
    const topics = { ...TOPICS, TOPIC_ERRORS: 'dlq', TOPIC_CLEANED: 'filtered' }
    expect(parseReplayRequest({ from: 'dlq' }, topics, NOW)).toMatchObject({ role: 'errors', topic: 'dlq', target: 'user-login' })
    expect(parseReplayRequest({ from: 'cleaned-data' }, topics, NOW)).toMatchObject({ role: 'cleaned', topic: 'filtered' })
  })

  it.each<[string, number]>([
    ['2h', NOW - 2 * HOUR],
    ['90m', NOW - 1.5 * HOUR],
    ['7d', NOW - 7 * 24 * HOUR],
    ['30s', NOW - 30_000],
    ['2026-12-01', Date.parse('2026-12-01T00:00:00Z')],
    ['2026-12-01T08:30', Date.parse('2026-12-01T08:30:00Z')],
    ['2026-12-01T08:30:15.250Z', Date.parse('2026-12-01T08:30:15.250Z')],
    ['2026-12-01T08:30:00+02:00', Date.parse('2026-12-01T06:30:00Z')],
    ['2026-12-01 08:30:00', Date.parse('2026-12-01T08:30:00Z')],
  ])('reads the time %s', (text, ms) => {
    expect(parseTime('since', text, NOW)).toBe(ms)
  })

  it.each(['2h ago', '-2h', '2026-13-01', '1694479551', ''])('refuses the time %j', (text) => {
    expect(() => parseTime('until', text, NOW)).toThrow(/--until/)
  })
})

const input = (value: string | Buffer | undefined, headers: Record<string, string> = {}, timestamp = NOW - HOUR, offset = 5n): ParkedInput => ({
  topic: 'processed-errors', partition: 1, offset, timestamp: BigInt(timestamp),
  value: value === undefined ? undefined : Buffer.isBuffer(value) ? value : Buffer.from(value),
  headers: new Map(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)])),
})
const lineage = { 'source-topic': 'user-login', 'source-partition': '2', 'source-offset': '41' }
const failure = (errorType: FailedLogin['errorType']): FailedLogin => ({ kind: 'failed', errorType, error: 'x', fields: [], userId: null })
const source = { topic: 'user-login', partition: 2, offset: 41n }

describe('decoding parked records', () => {
  const text = '{"user_id":"u1","ip":"10.1.2.3"'
  const binary = Buffer.from([0x7b, 0xff, 0xfe, 0x7d])
  it.each<[string, ParkedInput, Partial<ParkedRecord>]>([
    ['an error record with a UTF-8 payload', input(errorRecord(failure('invalid_json'), Buffer.from(text), source, 't'), lineage), { category: 'invalid_json', source, raw: Buffer.from(text) }],
    ['an error record with a base64 payload', input(errorRecord(failure('invalid_json'), binary, source, 't'), lineage), { category: 'invalid_json', raw: binary }],
    ['an error record without lineage headers (the value names the source)', input(errorRecord(failure('missing_fields'), Buffer.from('{}'), source, 't')), { category: 'missing_fields', source }],
    ['an error record whose payload was omitted', input('{"error_type":"invalid_json","raw":null,"raw_encoding":"omitted","raw_bytes":2000000}', lineage), { category: 'invalid_json', rawOmitted: true, raw: undefined }],
    ['a value that is no JSON', input('oops', lineage), { category: UNREADABLE, source }],
    ['a record without a value', input(undefined), { category: UNREADABLE, source: undefined }],
    ['broken lineage headers', input('{"error_type":"invalid_json"}', { ...lineage, 'source-offset': '-1' }), { category: 'invalid_json', source: undefined }],
    ['a partition header that is no number (not read as partition 0)', input('{"error_type":"invalid_json"}', { ...lineage, 'source-partition': '' }), { category: 'invalid_json', source: undefined }],
    ['broken lineage headers, the value names the source', input(errorRecord(failure('invalid_json'), Buffer.from(text), source, 't'), { ...lineage, 'source-partition': '2.0' }), { category: 'invalid_json', source }],
  ])('%s', (_what, record, expected) => {
    const parked = decodeParked('errors', record)
    const { raw, source: from, ...rest } = expected
    expect(parked).toMatchObject({ at: { topic: 'processed-errors', partition: 1, offset: 5n }, writtenMs: NOW - HOUR, ...rest })
    if ('raw' in expected) expect(parked.raw).toEqual(raw)
    if ('source' in expected) expect(parked.source).toEqual(from)
  })

  it('a cleaned-data record: its reason and its pseudonymised event', () => {
    const outcome = transformLogin(Buffer.from(JSON.stringify({ user_id: 'u', app_version: '2.2.0', device_type: 'ios', ip: '1.2.3.4', locale: 'RU', device_id: 'd-1', timestamp: String(NOW / 1000) })), NOW, rules)
    expect(outcome.kind).toBe('filtered')
    const parked = decodeParked('cleaned', input((outcome as { value: string }).value, lineage))
    expect(parked).toMatchObject({ category: 'app_version', source, event: { ip: '1.2.3.xxx', app_version: '2.2.0' } })
    expect(parked.raw).toBeUndefined()
  })

  it('reads replay-of coordinates, topic names with slashes included', () => {
    expect(parseCoordinates('user-login/2/41')).toEqual(source)
    expect(parseCoordinates('a/b/0/7')).toEqual({ topic: 'a/b', partition: 0, offset: 7n })
    expect(parseCoordinates('user-login/x/1')).toBeUndefined()
    expect(parseCoordinates(undefined)).toBeUndefined()
    // the bounds of the lineage headers (readLineage): a partition is an int32, an offset an int64
    expect(parseCoordinates('user-login/2147483647/9223372036854775807')).toEqual({ topic: 'user-login', partition: 2_147_483_647, offset: 2n ** 63n - 1n })
    expect(parseCoordinates('user-login/2147483648/1')).toBeUndefined()
    expect(parseCoordinates('user-login/1/9223372036854775808')).toBeUndefined()
  })
})

const parked = (over: Partial<ParkedRecord>): ParkedRecord => ({ at: { topic: 'processed-errors', partition: 1, offset: 5n }, writtenMs: NOW - HOUR, category: 'invalid_json', source, ...over })

describe('selection', () => {
  it.each<[string, Partial<ReplayFlags>, Partial<ParkedRecord>, boolean]>([
    ['all types', {}, {}, true],
    ['the type asked for', { errorType: ['invalid_json'] }, {}, true],
    ['another type', { errorType: ['missing_fields'] }, {}, false],
    ['one of several types', { errorType: ['missing_fields', 'invalid_json'] }, {}, true],
    ['written since', { since: '2h' }, {}, true],
    ['written before since', { since: '30m' }, {}, false],
    ['written exactly at since', { since: '1h' }, {}, true],
    ['written exactly at until', { until: '1h' }, {}, false],
    ['written before until', { until: '30m' }, {}, true],
    ['an unreadable record, even unfiltered', {}, { category: UNREADABLE }, false],
  ])('%s', (_what, flags, over, expected) => {
    expect(selects(request(flags), parked(over))).toBe(expected)
  })
})

describe('what is sent for a selected record', () => {
  const original = (value: string | undefined, headers: Record<string, string> = {}): OriginalLookup => ({
    found: true,
    record: { key: Buffer.from('u1'), ...(value === undefined ? {} : { value: Buffer.from(value) }), headers: new Map(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)])) },
  })
  const gone: OriginalLookup = { found: false }
  const raw = Buffer.from('{"raw":1}')

  it.each<[string, Partial<ParkedRecord>, OriginalLookup | undefined, object]>([
    ['the original, while the source has it', { raw }, original('{"orig":1}'), { kind: 'send', via: 'source', value: Buffer.from('{"orig":1}'), key: Buffer.from('u1'), replayOf: source }],
    ['the original, even for a filtered event', { category: 'app_version', event: {} }, original('{"orig":1}'), { kind: 'send', via: 'source' }],
    ['the error record\'s raw payload once the original is gone', { raw }, gone, { kind: 'send', via: 'raw', value: raw, key: Buffer.from('k'), replayOf: source }],
    ['nothing for a filtered event whose original is gone', { category: 'app_version', event: { ip: '1.2.3.xxx' } }, gone, { kind: 'unavailable', why: expect.stringMatching(/user-login\/2\/41 is gone.*pseudonymised event only, which is never replayed/) }],
    ['nothing when the payload was omitted and the original is gone', { rawOmitted: true }, gone, { kind: 'unavailable', why: expect.stringMatching(/too large/) }],
    ['the first input\'s coordinates for a copy of a copy', { raw }, original('{"orig":1}', { 'replay-id': 'earlier', 'replay-of': 'user-login/0/3' }), { kind: 'send', via: 'source', replayOf: { topic: 'user-login', partition: 0, offset: 3n } }],
    ['nothing again for the outcome of a copy this replay sent', { raw }, original('{"orig":1}', { 'replay-id': 'this-replay', 'replay-of': 'user-login/0/3' }), { kind: 'own-copy' }],
    ['an input that had no value is sent without one', {}, original(undefined), { kind: 'send', via: 'source', value: undefined }],
  ])('%s', (_what, over, lookup, expected) => {
    expect(planReplay('this-replay', parked(over), lookup, Buffer.from('k'))).toMatchObject(expected)
  })

  it('the copy carries the original key and bytes, replay-of and replay-id', () => {
    const step = planReplay('r1', parked({}), original('{"orig":1}'))
    if (step.kind !== 'send') throw new Error(step.kind)
    expect(replayOutput('user-login', 'r1', step)).toEqual({ topic: 'user-login', key: Buffer.from('u1'), value: Buffer.from('{"orig":1}'), headers: { 'replay-of': 'user-login/2/41', 'replay-id': 'r1' } })
  })
})

describe('the dry run shows events with personal fields masked', () => {
  it.each<[string, Buffer | undefined, string | undefined, RegExp, RegExp?]>([
    ['ip and device id of a JSON event', Buffer.from('{"user_id":"u1","ip":"199.172.111.135","device_id":"593-47-5928"}'), 'k'.repeat(16), /"ip":"199\.172\.111\.xxx","device_id":"[0-9a-f]{64}"/, /5928|\.135/],
    ['the device id hidden without a hash key', Buffer.from('{"device_id":"593-47-5928","ip":"2001:db8:85a3::1"}'), undefined, /"device_id":"\(hidden\)","ip":"2001:db8:85a3:xxxx/, /5928/],
    ['an ip that is no address', Buffer.from('{"ip":"1.2.3.4.5"}'), undefined, /"ip":"\(not an address, hidden\)"/, /1\.2\.3\.4/],
    ['text that is no JSON', Buffer.from('{"user_id":"u","ip":"10.1.2.3","device_id":"593-47-59'), undefined, /"ip":"10\.1\.2\.xxx","device_id":"\(hidden\)"/, /593-47/],
    ['bytes that are not UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), undefined, /^\(4 bytes, not UTF-8\)$/],
    ['no value', undefined, undefined, /^\(no value\)$/],
  ])('%s', (_what, bytes, key, shown, hidden) => {
    const text = maskedPreview(bytes, key)
    expect(text).toMatch(shown)
    if (hidden) expect(text).not.toMatch(hidden)
  })

  it('tells what the rules make of the bytes now', () => {
    const event = (version: string) => Buffer.from(JSON.stringify({ user_id: 'u', app_version: version, device_type: 'ios', ip: '1.2.3.4', locale: 'RU', device_id: 'd', timestamp: String(NOW / 1000) }))
    expect(predictOutcome(event('2.3.0'), NOW, rules)).toBe('processed')
    expect(predictOutcome(event('2.2.0'), NOW, rules)).toBe('filtered:app_version')
    expect(predictOutcome(Buffer.from('{"user_id'), NOW, rules)).toBe('error:invalid_json')
    expect(predictOutcome(undefined, NOW, rules)).toBe('error:invalid_json')
  })

  it('reports counts by type, examples, and that invalid_json bytes fail again', () => {
    const req = request({ errorType: ['invalid_json'] })
    const tally = new ReplayTally()
    for (let i = 0; i < 5; i++) {
      const p = parked({ raw: Buffer.from(`{"ip":"10.0.0.${i}"`) })
      const step = planReplay(req.id, p, i < 4 ? { found: true, record: { value: p.raw, headers: new Map() } } : { found: false })
      tally.add(p, step, () => ({ text: maskedPreview(p.raw), outcome: predictOutcome(p.raw, NOW, rules) }))
    }
    tally.skip(parked({ category: UNREADABLE }))
    const report = formatDryRun(req, tally, 0)
    expect(report).toMatch(/error type invalid_json: 5 selected: 5 would be sent \(4 from the source topic, 1 from the error record's raw payload\), 0 unavailable/)
    expect(report).toMatch(/would now be: error:invalid_json 5/)
    expect(report).toMatch(/re-sends the same bytes: they fail again as invalid_json unless the rules changed/)
    expect(report.match(/e\.g\./g)).toHaveLength(3)
    expect(report).toContain('"ip":"10.0.0.xxx"')
    expect(report).not.toMatch(/10\.0\.0\.\d/)
    expect(report).toMatch(/1 records of processed-errors are not pipeline records/)
    expect(report).toMatch(/5 selected, 5 would be sent, 0 unavailable \(nothing sent: dry run\)/)
    expect(tally.toJSON()).toMatchObject({ scanned: 6, selected: 5, unavailable: 0, by_category: { invalid_json: { via_source: 4, via_raw: 1, outcomes: { 'error:invalid_json': 5 } } } })
  })
})

describe('the verdict of a run', () => {
  const tallyOf = (steps: ('send' | 'gone' | 'skip')[]) => {
    const tally = new ReplayTally()
    for (const s of steps) {
      const p = parked({ category: 'app_version', event: {}, raw: undefined })
      if (s === 'skip') tally.skip(p)
      else tally.add(p, planReplay('r', p, s === 'send' ? { found: true, record: { headers: new Map() } } : { found: false }))
    }
    return tally
  }
  const cleaned = parseReplayRequest({ from: 'cleaned-data', reason: ['app_version'] }, TOPICS, NOW)
  it.each<[string, ('send' | 'gone' | 'skip')[], number, RegExp | undefined]>([
    ['an empty selection', ['skip', 'skip'], 0, /^empty selection: no record of cleaned-data of reason app_version \(2 records looked at\); nothing to replay$/],
    ['a finished replay run again', ['skip'], 10, undefined],
    ['originals that expired', ['gone', 'gone'], 0, /^the originals of all 2 selected records are gone from their source topic \(retention\); cleaned-data holds pseudonymised events only/],
    ['some sent, some gone', ['send', 'gone'], 0, undefined],
  ])('%s', (_what, steps, handledBefore, error) => {
    const verdict = replayVerdict(cleaned, { tally: tallyOf(steps), handledBefore, stopped: false })
    if (error) expect(verdict.error).toMatch(error)
    else expect(verdict.error).toBeUndefined()
  })
})
