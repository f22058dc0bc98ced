import { execFileSync } from 'node:child_process'
import { readFileSync, realpathSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { javaCommand } from '../../../src/shell/broker/java.ts'

/** keytool of the JDK whose java kpipe runs (JAVA_HOME, else java on PATH). */
export function keytoolCommand(): string {
  const java = javaCommand()
  if (java !== 'java') return join(dirname(java), 'keytool')
  const onPath = execFileSync('sh', ['-c', 'command -v java'], { encoding: 'utf8' }).trim()
  return join(dirname(realpathSync(onPath)), 'keytool')
}

export interface TestCertificates {
  dir: string
  /** password of every keystore below */
  storePassword: string
  /** the test CA, PEM: what clients are told to trust */
  caPem: string
  /** a CA nobody signed anything with: trusting it alone must fail */
  otherCaPem: string
  /** PKCS12 keystore of the server: key, certificate for localhost/127.0.0.1 signed by the CA, the CA */
  serverKeystore: string
  /** PKCS12 truststore holding the CA, for brokers that verify client certificates */
  truststore: string
  /** the server's certificate and private key as PEM (for PostgreSQL) */
  serverCertPem: string
  serverKeyPem: string
  /** a client certificate signed by the CA, and its key, as PEM (mutual TLS) */
  clientCertPem: string
  clientKeyPem: string
}

const DAYS = '2'

/**
 * A throwaway CA and certificates made with the JDK's keytool in `dir` (never committed): a
 * server certificate for localhost and 127.0.0.1, a client certificate, and a second CA that
 * signed nothing. PEM private keys are read out of the PKCS12 stores with a few lines of Java,
 * so that nothing beyond the JDK is needed.
 */
export function makeTestCertificates(dir: string): TestCertificates {
  const keytool = keytoolCommand()
  const storePassword = 'test-store-secret'
  const kt = (...args: string[]) => execFileSync(keytool, [...args, '-storepass', storePassword, '-noprompt'], { cwd: dir, stdio: 'pipe' })
  const ec = ['-keyalg', 'EC', '-groupname', 'secp256r1', '-validity', DAYS]
  const p = (name: string) => join(dir, name)

  for (const ca of ['ca', 'other-ca']) {
    kt('-genkeypair', '-keystore', p(`${ca}.p12`), '-storetype', 'PKCS12', '-alias', ca, ...ec, '-dname', `CN=kpipe ${ca}`, '-ext', 'bc:c')
    kt('-exportcert', '-keystore', p(`${ca}.p12`), '-alias', ca, '-rfc', '-file', p(`${ca}.pem`))
  }
  const signed = (name: string, dname: string, extensions: string[]) => {
    const store = p(`${name}.p12`)
    kt('-genkeypair', '-keystore', store, '-storetype', 'PKCS12', '-alias', name, ...ec, '-dname', dname)
    kt('-certreq', '-keystore', store, '-alias', name, '-file', p(`${name}.csr`))
    kt('-gencert', '-keystore', p('ca.p12'), '-alias', 'ca', '-infile', p(`${name}.csr`), '-outfile', p(`${name}.pem`), '-rfc', '-validity', DAYS, ...extensions.flatMap((e) => ['-ext', e]))
    // the chain: the CA first, then the signed reply replaces the self-signed certificate
    kt('-importcert', '-keystore', store, '-alias', 'ca', '-file', p('ca.pem'))
    kt('-importcert', '-keystore', store, '-alias', name, '-file', p(`${name}.pem`))
    return store
  }
  const serverKeystore = signed('server', 'CN=localhost', ['SAN=dns:localhost,ip:127.0.0.1', 'KU=digitalSignature,keyAgreement', 'EKU=serverAuth'])
  signed('client', 'CN=kpipe-client', ['KU=digitalSignature,keyAgreement', 'EKU=clientAuth'])
  kt('-importcert', '-keystore', p('truststore.p12'), '-storetype', 'PKCS12', '-alias', 'ca', '-file', p('ca.pem'))

  writeFileSync(p('ExportKey.java'), EXPORT_KEY)
  const exportKey = (name: string) => {
    const pem = execFileSync(javaCommand(), [p('ExportKey.java'), p(`${name}.p12`), storePassword, name], { encoding: 'utf8', stdio: 'pipe' })
    writeFileSync(p(`${name}-key.pem`), pem, { mode: 0o600 })
    return p(`${name}-key.pem`)
  }
  const certificates: TestCertificates = {
    dir,
    storePassword,
    caPem: p('ca.pem'),
    otherCaPem: p('other-ca.pem'),
    serverKeystore,
    truststore: p('truststore.p12'),
    serverCertPem: p('server.pem'),
    serverKeyPem: exportKey('server'),
    clientCertPem: p('client.pem'),
    clientKeyPem: exportKey('client'),
  }
  if (!readFileSync(certificates.serverKeyPem, 'utf8').includes('BEGIN PRIVATE KEY')) throw new Error('exporting the server key failed')
  return certificates
}

/** Prints the private key of a PKCS12 entry as PKCS#8 PEM (Java 17 runs a single source file directly). */
const EXPORT_KEY = `
import java.io.FileInputStream;
import java.security.Key;
import java.security.KeyStore;
import java.util.Base64;

public class ExportKey {
  public static void main(String[] args) throws Exception {
    KeyStore store = KeyStore.getInstance("PKCS12");
    try (FileInputStream in = new FileInputStream(args[0])) { store.load(in, args[1].toCharArray()); }
    Key key = store.getKey(args[2], args[1].toCharArray());
    String body = Base64.getMimeEncoder(64, "\\n".getBytes()).encodeToString(key.getEncoded());
    System.out.print("-----BEGIN PRIVATE KEY-----\\n" + body + "\\n-----END PRIVATE KEY-----\\n");
  }
}
`
