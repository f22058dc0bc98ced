import { SETTING_NAMES, settingDefault, settingMeta } from './settings.ts'

export const TABLE_START = '<!-- settings:start (generated from src/shell/settings.ts by `npm run docs:settings`) -->'
export const TABLE_END = '<!-- settings:end -->'

/** The README's settings reference, generated from the zod schema so that it cannot drift. */
export function renderSettingsTable(): string {
  const rows = SETTING_NAMES.map((name) => {
    const meta = settingMeta(name)
    const fallback = settingDefault(name)
    const cell = (text: string) => text.replace(/\|/g, '\\|')
    return `| \`${name}\` | ${fallback === undefined ? '—' : `\`${cell(fallback)}\``} | ${cell(meta.description)} |`
  })
  return [TABLE_START, '| setting | default | meaning |', '|---|---|---|', ...rows, TABLE_END].join('\n')
}

/** `text` with the block between the markers replaced by the current table. */
export function replaceSettingsTable(text: string): string {
  const start = text.indexOf(TABLE_START)
  const end = text.indexOf(TABLE_END)
  if (start < 0 || end < start) throw new Error('settings table markers not found')
  return text.slice(0, start) + renderSettingsTable() + text.slice(end + TABLE_END.length)
}
