/**
 * What must not outlive this process when it exits at once (a second Ctrl-C): children that
 * run detached, such as the local broker's JVM that `kpipe up` started. The actions run
 * synchronously, just before process.exit, so nothing is left half-stopped behind a prompt.
 */
const actions = new Set<() => void>()

/** Registers `action` for an immediate exit; returns what unregisters it (once it stopped cleanly). */
export function beforeImmediateExit(action: () => void): () => void {
  actions.add(action)
  return () => {
    actions.delete(action)
  }
}

/** Runs the registered actions (each one on its own: one failing does not skip the others), then exits. */
export function exitImmediately(code: number): never {
  for (const action of [...actions]) {
    try {
      action()
    } catch {
      // already gone, or not ours to stop: the exit goes on
    }
  }
  process.exit(code)
}

/** SIGKILL to the process group of a child started detached (its own group, whose id is its pid). */
export function killProcessGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL')
  } catch {
    // no such group (it exited already): nothing to do
  }
}
