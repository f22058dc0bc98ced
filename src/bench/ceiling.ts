import { spawn } from 'node:child_process'
import { requireJava } from '../shell/broker/java.ts'
import { resolveKafkaJars } from '../shell/broker/jars.ts'
import { ownChild } from './measure.ts'

export interface CeilingRun {
  producerMsgsPerS: number
  consumerMsgsPerS: number
}

/**
 * The broker's own limit on this machine: Kafka's ProducerPerformance (acks=all, idempotent, like
 * every kpipe producer) writes `records` records of `recordSize` bytes, then ConsumerPerformance
 * reads them back. Both tools report their own rate, measured without the JVM's start-up.
 */
export async function measureCeiling(bootstrap: string, topic: string, records: number, recordSize: number): Promise<CeilingRun> {
  const java = requireJava().command
  const classpath = `${await resolveKafkaJars()}/*`
  const produced = await runTool(java, classpath, 'org.apache.kafka.tools.ProducerPerformance', [
    '--topic', topic, '--num-records', String(records), '--record-size', String(recordSize), '--throughput', '-1',
    '--producer-props', `bootstrap.servers=${bootstrap}`, 'acks=all', 'enable.idempotence=true',
  ])
  const producerMsgsPerS = parseProducerPerformance(produced)
  const consumed = await runTool(java, classpath, 'org.apache.kafka.tools.ConsumerPerformance', [
    '--bootstrap-server', bootstrap, '--topic', topic, '--messages', String(records), '--timeout', '60000',
    '--group', `${topic}-reader`,
  ])
  return { producerMsgsPerS, consumerMsgsPerS: parseConsumerPerformance(consumed) }
}

/** `1000000 records sent, 250000.0 records/sec (47.68 MB/sec), …` (the last summary line). */
export function parseProducerPerformance(output: string): number {
  const matches = [...output.matchAll(/(\d+) records sent, ([\d.]+) records\/sec/g)]
  const last = matches[matches.length - 1]
  if (!last) throw new Error(`ProducerPerformance printed no summary:\n${output.slice(-1500)}`)
  return Number(last[2])
}

/**
 * The CSV line under `start.time, end.time, …, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec`:
 * fetch.nMsg.sec leaves out the group join, as our own figures leave out start-up.
 */
export function parseConsumerPerformance(output: string): number {
  const lines = output.split('\n').map((l) => l.trim())
  const headerAt = lines.findIndex((l) => l.startsWith('start.time'))
  if (headerAt === -1 || !lines[headerAt + 1]) throw new Error(`ConsumerPerformance printed no result:\n${output.slice(-1500)}`)
  const header = lines[headerAt]!.split(',').map((h) => h.trim())
  const values = lines[headerAt + 1]!.split(',').map((v) => v.trim())
  const column = header.indexOf('fetch.nMsg.sec') !== -1 ? header.indexOf('fetch.nMsg.sec') : header.indexOf('nMsg.sec')
  const rate = Number(values[column])
  if (!(rate > 0)) throw new Error(`ConsumerPerformance reported no rate:\n${output.slice(-1500)}`)
  return rate
}

function runTool(java: string, classpath: string, mainClass: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(java, ['-Xmx512m', '-cp', classpath, mainClass, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    ownChild(child, 'tool')
    let output = ''
    child.stdout.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr.on('data', (d: Buffer) => (output += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve(output) : reject(new Error(`${mainClass} exited with ${code}:\n${output.slice(-1500)}`))))
  })
}
