/**
 * CPU time of processes, read from /proc (Linux): utime + stime of every thread, in seconds.
 * The benchmark samples it around each level to report CPU per message for the server, the
 * Postgres backends, Redis and the load generator itself.
 */
import { readdirSync, readFileSync } from 'node:fs'

const TICKS = 100 // sysconf(_SC_CLK_TCK) on Linux

/** CPU seconds used so far by one process (all its threads), or 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the ")" that closes the command name: state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / TICKS
  } catch {
    return 0
  }
}

/** Pids whose command name is `name` (e.g. every Postgres backend: `postgres`). */
export function pidsNamed(name: string): number[] {
  const out: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === name) out.push(Number(d))
    } catch {}
  }
  return out
}

/** The pid and every descendant (a server's worker threads are threads, but `bun` may fork). */
export function withChildren(pid: number): number[] {
  const all = [pid]
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) all.push(...withChildren(Number(d)))
    } catch {}
  }
  return all
}

/** A named group of processes whose CPU is measured together. */
export interface CpuGroup {
  name: string
  pids: () => number[]
}

/** Snapshot every group's CPU seconds, including processes that are gone later (Postgres backends come and go). */
export function snapshot(groups: CpuGroup[]): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>()
  for (const g of groups) out.set(g.name, new Map(g.pids().map((p) => [p, cpuSeconds(p)])))
  return out
}

/** CPU seconds each group used between two snapshots (processes new in `after` count from 0). */
export function delta(before: Map<string, Map<number, number>>, after: Map<string, Map<number, number>>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [name, a] of after) {
    const b = before.get(name) ?? new Map()
    let s = 0
    for (const [pid, t] of a) s += t - (b.get(pid) ?? 0)
    out[name] = s
  }
  return out
}
