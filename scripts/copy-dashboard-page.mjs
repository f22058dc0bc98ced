// Part of `npm run build`: the dashboard page's static files go next to the compiled server,
// which finds them relative to itself (src/dashboard/public under vitest, dist/dashboard/public built).
import { cpSync, rmSync } from 'node:fs'

rmSync('dist/dashboard/public', { recursive: true, force: true })
cpSync('src/dashboard/public', 'dist/dashboard/public', { recursive: true })
