import { describe, expect, it } from 'vitest'
import { newClusterId } from './local-broker.ts'

describe('a new cluster id', () => {
  it('is 16 random bytes in base64url that never start with "-" (the storage tool would read an option)', () => {
    const ids = Array.from({ length: 2000 }, newClusterId)
    expect(ids.filter((id) => id.startsWith('-'))).toEqual([])
    expect(ids.every((id) => /^[A-Za-z0-9_-]{22}$/.test(id))).toBe(true)
    expect(new Set(ids).size).toBe(ids.length)
  })
})
