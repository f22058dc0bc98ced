import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { OutcomeCounts } from '../core/outcome-counts.ts'
import { portableRules, type PackedValues, type RulesResult } from '../core/rules-batch.ts'
import type { LoginRules } from '../core/login-event.ts'

// the worker's module beside this one: .js when built, .ts when run from the sources (tests)
const WORKER = new URL(`./rules-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url)

/** The rules thread's name (the operating system keeps its first 15 characters as the thread's). */
export const RULES_THREAD_NAME = 'kpipe-login-rules'

/**
 * The login rules on a thread of their own (a worker): JSON, masking, the HMAC and the output's
 * UTF-8 run there, on the second core, while the main thread fetches, encodes and writes. Runs
 * are answered in the order they were asked. If the thread fails, every run asked of it fails
 * with the reason: the batch is not committed and the stage stops (nothing is lost).
 */
export class RulesThread {
  readonly #worker: Worker
  readonly #waiting: { resolve: (result: RulesResult) => void; reject: (error: Error) => void }[] = []
  #failure: Error | undefined

  constructor(rules: LoginRules) {
    this.#worker = new Worker(WORKER, { workerData: portableRules(rules), name: RULES_THREAD_NAME })
    // what keeps the process alive is the stage's work, not an idle thread
    this.#worker.unref()
    this.#worker.on('message', (result: RulesResult) => {
      // counts arrive as plain data: an OutcomeCounts again, for merge() and the getters
      const counts = new OutcomeCounts()
      counts.merge(result.counts)
      this.#waiting.shift()?.resolve({ ...result, counts })
    })
    this.#worker.on('error', (error) => this.#fail(new Error(`the login rules thread failed: ${error.message}`, { cause: error })))
    this.#worker.on('exit', (code) => this.#fail(new Error(`the login rules thread stopped (exit code ${code})`)))
  }

  /** The rules' outcomes for packed values at the time `nowMs`. The packed buffers move to the thread (they are empty here after). */
  run(packed: PackedValues, nowMs: number): Promise<RulesResult> {
    if (this.#failure) return Promise.reject(this.#failure)
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject })
      this.#worker.postMessage({ packed, nowMs }, [packed.bytes.buffer, packed.bounds.buffer])
    })
  }

  /** Ends the thread: runs not answered yet fail now (an answer on its way is dropped), later ones at once. */
  async close(): Promise<void> {
    this.#fail(new Error('the login rules thread is closed'))
    await this.#worker.terminate()
  }

  #fail(error: Error): void {
    this.#failure ??= error
    for (const waiting of this.#waiting.splice(0)) waiting.reject(this.#failure)
  }
}
