// Rows/s and CPU per row (the PostgreSQL backend's and this process's) of the sink's write forms,
// into an ephemeral PostgreSQL (initdb/pg_ctl on PATH), batches of 5,000 (docs/benchmarks.md):
//   insert   INSERT … SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING (what replays still use)
//   staging  COPY into a temporary table, then INSERT … SELECT … ON CONFLICT DO NOTHING, in one transaction
//   copy     insertRows: COPY straight into performance
// Run after `npm run build`: node scripts/sink-write-cost.mjs [rows]
import { readdirSync, readFileSync } from 'node:fs'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { removePostgres, startPostgres } from '../dist/shell/postgres/ephemeral-server.js'
import { openPostgres } from '../dist/shell/postgres/database.js'
import { decodeSample } from '../dist/host-metrics/sink/decode.js'
import { insertRows, insertRowsOnConflict, PERFORMANCE_SCHEMA } from '../dist/host-metrics/sink/performance-table.js'
import { SAMPLE_COLUMNS } from '../dist/host-metrics/sample.js'

const ROWS = Number(process.argv[2] ?? 200_000)
const BATCH = 5000
const server = startPostgres(50_000 + Math.floor(Math.random() * 10_000))
const db = openPostgres(server.url, 1)
const client = new pg.Client({ connectionString: server.url })
await client.connect()
for (const statement of PERFORMANCE_SCHEMA) await client.query(statement)
// CPU time of the whole server: the postmaster, its live children, and the children it has reaped
const postmaster = Number(readFileSync(`${server.dir}/data/postmaster.pid`, 'utf8').split('\n')[0])
const ticks = (pid, withChildren) => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return Number(f[11]) + Number(f[12]) + (withChildren ? Number(f[13]) + Number(f[14]) : 0)
  } catch {
    return 0
  }
}
const serverMs = () => {
  let sum = ticks(postmaster, true)
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      if (Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]) === postmaster) sum += ticks(pid, false)
    } catch {
      // gone meanwhile
    }
  }
  return sum * 10
}

const start = Date.UTC(2026, 0, 1)
const rowsOf = (prefix) => Array.from({ length: ROWS }, (_, i) => decodeSample(Buffer.from(JSON.stringify({
  host: `${prefix}-${i % 16}`, time: new Date(start + Math.floor(i / 16)).toISOString(), cpu_usage: (i % 10_000) / 100, memory_usage: 43.1,
  cpu_interrupts: 123_456_789 + i, cpu_calls: null, memory_used: 7_340_032_000, memory_free: 1_048_576_000, bytes_sent: 123_456 + i,
  bytes_received: 654_321 + i, disk_usage: 57.3,
})), undefined).row)
const columns = `host, time, ${SAMPLE_COLUMNS.join(', ')}`
const copyText = (rows) => rows.map((r) => [r.host, r.time, ...SAMPLE_COLUMNS.map((c) => r.values[c] ?? '\\N')].join('\t')).join('\n') + '\n'
const forms = {
  insert: (rows) => insertRowsOnConflict(db, rows),
  staging: async (rows) => {
    await client.query('BEGIN')
    await client.query('CREATE TEMP TABLE IF NOT EXISTS performance_staging (LIKE performance) ON COMMIT DELETE ROWS')
    const copy = client.query(copyFrom(`COPY performance_staging (${columns}) FROM STDIN`))
    await new Promise((resolve, reject) => copy.on('finish', resolve).on('error', reject).end(copyText(rows)))
    const result = await client.query(`INSERT INTO performance (${columns}) SELECT ${columns} FROM performance_staging ON CONFLICT (host, time) DO NOTHING`)
    await client.query('COMMIT')
    return result.rowCount
  },
  copy: (rows) => insertRows(db, rows),
}
try {
  for (const [n, name] of [...Object.keys(forms), ...Object.keys(forms)].entries()) {
    const rows = rowsOf(`${name}${n}`)
    const server0 = serverMs()
    const own0 = process.cpuUsage()
    const t0 = performance.now()
    let written = 0
    for (let i = 0; i < rows.length; i += BATCH) written += await forms[name](rows.slice(i, i + BATCH))
    const ms = performance.now() - t0
    const own = process.cpuUsage(own0)
    if (written !== ROWS) throw new Error(`${name} wrote ${written} of ${ROWS}`)
    console.log(`${name.padEnd(8)} ${Math.round((ROWS * 1000) / ms).toLocaleString('en')} rows/s; CPU per row: server ${(((serverMs() - server0) * 1000) / ROWS).toFixed(1)} µs, sink ${((own.user + own.system) / ROWS).toFixed(1)} µs`)
  }
} finally {
  await client.end()
  await db.close()
  removePostgres(server)
}
