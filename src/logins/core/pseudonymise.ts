import { createHmac } from 'node:crypto'

/**
 * HMAC-SHA-256 of a device id under the secret key, as lowercase hex. The same id always gives
 * the same pseudonym (joins and counts still work), but without the key nobody can get from a
 * pseudonym back to the id, not even by hashing every possible id: a plain hash would fall to that.
 */
export function pseudonymiseDeviceId(key: string | Buffer, deviceId: string): string {
  return createHmac('sha256', typeof key === 'string' ? keyBytes(key) : key).update(deviceId).digest('hex')
}

// A string key is encoded to UTF-8 by every createHmac (~0.3 µs a record); the key of a process
// does not change, so its bytes are kept (the same bytes: the digest is the same).
let lastKey: string | undefined
let lastKeyBytes = Buffer.alloc(0)
function keyBytes(key: string): Buffer {
  if (key !== lastKey) {
    lastKeyBytes = Buffer.from(key, 'utf8')
    lastKey = key
  }
  return lastKeyBytes
}
