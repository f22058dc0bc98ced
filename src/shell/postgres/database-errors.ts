import { SetupError } from '../errors.ts'

const UNTRUSTED_CERTIFICATE = /^(SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE|CERT_REJECTED|INVALID_CA)$/

/**
 * A PostgreSQL failure that no retry can fix — TLS refused in either direction, a login the
 * server rejects, a certificate file that cannot be read — as a one-line SetupError that says
 * which DATABASE_URL parameter to change; undefined for anything else. `where` names the server
 * without credentials.
 */
export function databaseSetupError(error: unknown, where: string): SetupError | undefined {
  if (error instanceof SetupError) return error
  if (!(error instanceof Error)) return undefined
  const { code, message } = error as Error & { code?: unknown; path?: unknown }
  const tlsHint = 'in DATABASE_URL, sslmode=verify-full&sslrootcert=/path/to/ca.pem names the CA that signed the server\'s certificate'
  if (typeof code === 'string') {
    if (UNTRUSTED_CERTIFICATE.test(code)) return new SetupError(`TLS to PostgreSQL at ${where} failed: the server's certificate is not trusted (${message})`, tlsHint)
    if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return new SetupError(`TLS to PostgreSQL at ${where} failed: ${message}`, 'the server\'s certificate must be renewed (or the clock of this machine is wrong)')
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return new SetupError(`TLS to PostgreSQL at ${where} failed: the server's certificate is not for this host (${message})`, 'use a host name in DATABASE_URL that the certificate names')
    if (code.startsWith('ERR_OSSL_')) return new SetupError(`the TLS files for PostgreSQL were refused: ${message}`, 'check sslrootcert, sslcert and sslkey in DATABASE_URL (PEM; the key must match the certificate)')
    // pg reads sslrootcert, sslcert and sslkey when it connects
    if (code === 'ENOENT' || code === 'EACCES') return new SetupError(`cannot read a TLS file of DATABASE_URL: ${message}`, 'sslrootcert, sslcert and sslkey must name readable PEM files')
    // class 28: invalid authorisation (wrong password, no pg_hba.conf entry, e.g. for a connection without TLS)
    if (code.startsWith('28')) return new SetupError(`PostgreSQL at ${where} refused the login: ${message}`, /no encryption/.test(message) ? 'the server requires TLS: add sslmode=verify-full&sslrootcert=/path/to/ca.pem to DATABASE_URL' : 'check the user and password in DATABASE_URL')
  }
  if (/does not support SSL/i.test(message)) return new SetupError(`PostgreSQL at ${where} does not accept TLS connections`, 'enable ssl on the server, or remove sslmode from DATABASE_URL')
  return undefined
}
