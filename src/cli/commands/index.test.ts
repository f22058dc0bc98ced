import { describe, expect, it } from 'vitest'
import { COMMANDS, invokedCommand } from './index.ts'

describe('commands load only when they run', () => {
  it('lists each command with its own description', async () => {
    for (const { name, summary, load } of COMMANDS) {
      const command = await load()
      expect(command.name()).toBe(name)
      expect(summary).toBe(command.description())
    }
  })

  it('finds the command after kpipe\'s own options, and the one help is asked for', () => {
    expect(invokedCommand([])).toBeUndefined()
    expect(invokedCommand(['--help'])).toBeUndefined()
    expect(invokedCommand(['tail', '--help'])).toBe('tail')
    expect(invokedCommand(['--brokers', 'tail:9092', '--log-level', 'debug', 'audit'])).toBe('audit')
    expect(invokedCommand(['--data-dir=/tmp/x', 'up', '--port', '8080'])).toBe('up')
    expect(invokedCommand(['help', 'logins'])).toBe('logins')
    expect(invokedCommand(['help'])).toBeUndefined()
  })
})
