import { expect, it } from 'vitest'
import { newClusterId } from './local-broker.ts'

it('cluster ids are 22 URL-safe base64 characters of 16 bytes, never starting with "-" (the storage tool would take it for an option)', () => {
  // one id in 64 would start with "-": 5,000 draws meet that case with certainty for practical purposes (1 - (63/64)^5000)
  for (let i = 0; i < 5000; i++) {
    const id = newClusterId()
    expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/)
    expect(Buffer.from(id, 'base64url')).toHaveLength(16)
  }
})
