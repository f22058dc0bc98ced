import { createHmac } from 'node:crypto'

/**
 * HMAC-SHA-256 of a device id under the secret key, as lowercase hex. The same id always gives
 * the same pseudonym (joins and counts still work), but without the key nobody can get from a
 * pseudonym back to the id, not even by hashing every possible id: a plain hash would fall to that.
 */
export function pseudonymiseDeviceId(key: string | Buffer, deviceId: string): string {
  return createHmac('sha256', key).update(deviceId).digest('hex')
}
