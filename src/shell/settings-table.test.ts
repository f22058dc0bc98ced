import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { renderSettingsTable, TABLE_END, TABLE_START } from './settings-table.ts'
import { SETTING_NAMES } from './settings.ts'

describe('README settings reference', () => {
  it('matches the zod schema (run `npm run docs:settings` when it does not)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    const start = readme.indexOf(TABLE_START)
    const end = readme.indexOf(TABLE_END)
    expect(start, 'README has the settings table markers').toBeGreaterThanOrEqual(0)
    expect(readme.slice(start, end + TABLE_END.length)).toBe(renderSettingsTable())
  })

  it('lists every setting once', () => {
    const table = renderSettingsTable()
    for (const name of SETTING_NAMES) expect(table.split(`| \`${name}\` |`)).toHaveLength(2)
  })
})
