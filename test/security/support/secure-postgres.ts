import { execFileSync } from 'node:child_process'
import { appendFileSync, chownSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { postgresControl, type PostgresServer } from '../../support/postgres-server.ts'

export interface SecurePostgres extends PostgresServer {
  user: string
  password: string
}

/**
 * A PostgreSQL server that accepts only TLS connections on 127.0.0.1 (password auth, SCRAM),
 * with the given certificate and key; plain TCP connections are rejected by pg_hba.conf. Its
 * temp directory (cluster, copies of the key, password file) goes when it stops, or when it
 * fails to start.
 */
export function startSecurePostgres(port: number, certPem: string, keyPem: string, password: string): SecurePostgres {
  const dir = mkdtempSync(join(tmpdir(), 'kpipe-pg-tls-'))
  try {
    return initAndStart(dir, port, certPem, keyPem, password)
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
}

function initAndStart(dir: string, port: number, certPem: string, keyPem: string, password: string): SecurePostgres {
  const asRoot = userInfo().uid === 0
  const owner = asRoot ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()) } : undefined
  const own = (path: string) => owner && chownSync(path, owner.uid, owner.gid)
  own(dir)
  const control = postgresControl(dir, port)
  const pwfile = join(dir, 'pwfile')
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 })
  own(pwfile)
  control.run('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', `--pwfile=${pwfile}`, '--encoding=UTF8', '--no-sync'])
  const data = join(dir, 'data')
  // PostgreSQL refuses a key file readable by others, or not owned by its own user
  for (const [from, to] of [[certPem, 'server.crt'], [keyPem, 'server.key']] as const) {
    copyFileSync(from, join(data, to))
    own(join(data, to))
  }
  execFileSync('chmod', ['600', join(data, 'server.key')])
  appendFileSync(join(data, 'postgresql.conf'), "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
  writeFileSync(join(data, 'pg_hba.conf'), [
    'local all all trust',
    'hostnossl all all 127.0.0.1/32 reject',
    'hostssl all all 127.0.0.1/32 scram-sha-256',
    '',
  ].join('\n'))
  own(join(data, 'pg_hba.conf'))
  control.start()
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    port,
    dir,
    user: 'postgres',
    password,
    start: () => {
      throw new Error('the TLS-only PostgreSQL of the security suite is removed when it stops; start a new one')
    },
    stop: () => {
      try {
        control.stop()
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}
