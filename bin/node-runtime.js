// The Node.js that runs kpipe (docs/decisions.md, "Node.js 24 is the reference runtime").
//
// kpipe needs Node.js 22.22 or newer; 24 LTS is the one it is built and tested on. On an older
// Node (20 is end-of-life) it fetches Node.js 24 once from the npm registry — the registry's
// `node-<platform>-<arch>` package is the official binary, no install script — into
// ~/.cache/kpipe/node24 (XDG_CACHE_HOME respected) and runs there.
//
//   node bin/node-runtime.js --node24       prints the path of a Node.js 24 binary (fetched if needed)
//   node bin/node-runtime.js <command> ...  runs <command> with a supported Node.js first on PATH
//
// Plain JavaScript that an old Node can run: it is what decides which Node runs the rest.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs'
import { homedir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** the oldest Node.js kpipe runs on (package.json `engines`; @platformatic/kafka 2.x needs it) */
export const MINIMUM = '22.22.0'
export const REFERENCE_MAJOR = 24

function parts(version) {
  return version.replace(/^v/, '').split('.').map((n) => Number.parseInt(n, 10))
}

export function isSupported(version = process.versions.node) {
  const [major, minor] = parts(version)
  const [minMajor, minMinor] = parts(MINIMUM)
  return major > minMajor || (major === minMajor && minor >= minMinor)
}

export function cacheDir() {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kpipe', `node${REFERENCE_MAJOR}`)
}

function versionOf(bin) {
  const result = spawnSync(bin, ['-p', 'process.versions.node'], { encoding: 'utf8' })
  return result.status === 0 ? result.stdout.trim() : undefined
}

function registryPackage() {
  const platform = { linux: 'linux', darwin: 'darwin' }[process.platform]
  const arch = { x64: 'x64', arm64: 'arm64' }[process.arch]
  if (!platform || !arch) {
    throw new Error(`kpipe needs Node.js ${MINIMUM} or newer (this is ${process.version}); install Node.js ${REFERENCE_MAJOR} from https://nodejs.org and run kpipe with it`)
  }
  return `node-${platform}-${arch}@${REFERENCE_MAJOR}`
}

/** A Node.js 24 binary: this one if it is 24, else the cached one, fetched from the npm registry once. */
export function node24() {
  if (parts(process.versions.node)[0] === REFERENCE_MAJOR) return process.execPath
  const dir = cacheDir()
  const bin = join(dir, 'node_modules', '.bin', 'node')
  if (existsSync(bin) && versionOf(bin)?.startsWith(`${REFERENCE_MAJOR}.`)) return bin
  const pkg = registryPackage()
  process.stderr.write(`kpipe: Node.js ${process.versions.node} is older than ${MINIMUM}; fetching Node.js ${REFERENCE_MAJOR} (${pkg}) from the npm registry into ${dir}, once\n`)
  // into a directory of its own, renamed into place: two first runs at once do not mix their files
  const staging = `${dir}.${process.pid}`
  rmSync(staging, { recursive: true, force: true })
  mkdirSync(staging, { recursive: true })
  const npm = spawnSync(
    process.platform === 'win32' ? 'npm.cmd' : 'npm',
    ['install', '--prefix', staging, '--global=false', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error', pkg],
    { stdio: ['ignore', 2, 2] },
  )
  const fetched = join(staging, 'node_modules', '.bin', 'node')
  if (npm.status !== 0 || !versionOf(fetched)) {
    rmSync(staging, { recursive: true, force: true })
    throw new Error(`kpipe: could not fetch Node.js ${REFERENCE_MAJOR} with npm (${npm.error?.message ?? `exit ${npm.status}`}); install Node.js ${REFERENCE_MAJOR} from https://nodejs.org, or run again`)
  }
  rmSync(dir, { recursive: true, force: true })
  try {
    renameSync(staging, dir)
  } catch {
    rmSync(staging, { recursive: true, force: true }) // another process put its copy there first
  }
  return bin
}

/** The Node.js binary to run kpipe with: this one when it is new enough, else Node.js 24. */
export function supportedNode() {
  return isSupported() ? process.execPath : node24()
}

/**
 * Runs `command` as a child with `nodeBin`'s directory first on PATH, standard streams shared;
 * resolves with its exit code. The child has a process group of its own and gets each SIGINT,
 * SIGTERM and SIGHUP this process gets, exactly once: Ctrl-C (sent to the terminal's foreground
 * group) must not reach it twice, once from the terminal and once passed on, because a second
 * SIGINT tells kpipe to stop at once instead of cleanly.
 */
export function runWith(nodeBin, command, args) {
  return new Promise((resolve) => {
    const env = { ...process.env, PATH: `${dirname(nodeBin)}${delimiter}${process.env.PATH ?? ''}` }
    const child = spawn(command, args, { stdio: 'inherit', env, detached: process.platform !== 'win32' })
    const forward = (signal) => child.kill(signal)
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, forward)
    child.on('error', (error) => {
      process.stderr.write(`kpipe: cannot run ${command}: ${error.message}\n`)
      resolve(127)
    })
    child.on('exit', (code, signal) => {
      const numbers = { SIGINT: 2, SIGHUP: 1, SIGKILL: 9, SIGTERM: 15 }
      resolve(code ?? 128 + (numbers[signal] ?? 1))
    })
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [first, ...rest] = process.argv.slice(2)
  try {
    if (first === '--node24') {
      process.stdout.write(`${node24()}\n`)
    } else if (first) {
      process.exitCode = await runWith(supportedNode(), first, rest)
    } else {
      process.stderr.write('usage: node bin/node-runtime.js --node24 | <command> [args...]\n')
      process.exitCode = 2
    }
  } catch (error) {
    process.stderr.write(`${error.message}\n`)
    process.exitCode = 1
  }
}
