import { describe, expect, it } from 'vitest'
import { newClusterId } from './local-broker.ts'

describe('newClusterId', () => {
  it('never starts with "-", which the storage tool would read as an option', () => {
    // 0xF8 puts "-" (index 62 of the URL-safe alphabet) first; the id is drawn again
    const draws = [Buffer.alloc(16, 0xf8), Buffer.alloc(16, 0x11)]
    expect(newClusterId(() => draws.shift()!)).toBe(Buffer.alloc(16, 0x11).toString('base64url'))
    for (let i = 0; i < 5_000; i++) expect(newClusterId()).not.toMatch(/^-/)
  })

  it('is 16 bytes in URL-safe base64 without padding, as Kafka reads it', () => {
    const id = newClusterId()
    expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/)
    expect(Buffer.from(id, 'base64url')).toHaveLength(16)
  })
})
