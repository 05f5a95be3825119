/** Small pieces the benchmark and load runners share. */

/** `--name value` pairs; a flag followed by another flag (or nothing) is a bare switch. */
export function parseArgs(argv = process.argv.slice(2)): Map<string, string> {
  const args = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i]!.replace(/^--/, '')
    const next = argv[i + 1]
    if (next === undefined || next.startsWith('--')) args.set(key, '')
    else {
      args.set(key, next)
      i++
    }
  }
  return args
}

/** Percentile of an ascending array (NaN when empty). */
export const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN)

export const round = (n: number) => Math.round(n * 100) / 100

/** Resident memory of a process in bytes (0 once it is gone). */
export async function rssOf(pid: number): Promise<number> {
  try {
    const status = await Bun.file(`/proc/${pid}/status`).text()
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024
  } catch {
    return 0
  }
}
