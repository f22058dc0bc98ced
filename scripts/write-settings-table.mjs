// Rewrites the settings table of README.md from the zod schema (npm run docs:settings).
import { readFileSync, writeFileSync } from 'node:fs'
import { replaceSettingsTable } from '../dist/shell/settings-table.js'

const readme = new URL('../README.md', import.meta.url)
writeFileSync(readme, replaceSettingsTable(readFileSync(readme, 'utf8')))
console.log('README.md settings table updated')
