import { join } from 'node:path'
import type { Subprocess } from 'bun'

/** A port below Linux's ephemeral range, so it cannot collide with a client socket's local port. */
export const freePort = () => 20_000 + Math.floor(Math.random() * 12_000)

export interface SpawnedServer {
  url: string
  proc: Subprocess
}

/**
 * Start `bun src/main.ts` as its own process (benchmarks, load suites and the tests that kill or
 * signal it) and wait until it answers. `flags` go to Bun (e.g. `--cpu-prof-md`).
 */
export async function spawnServer(env: Record<string, string>, opts: { port?: number; flags?: string[]; quiet?: boolean; cwd?: string } = {}): Promise<SpawnedServer> {
  const port = opts.port ?? freePort()
  const proc = Bun.spawn(['bun', ...(opts.flags ?? []), 'src/main.ts'], {
    // `cwd`: another checkout of the server (before/after comparisons in one run).
    cwd: opts.cwd ?? join(import.meta.dir, '..'),
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', IP_RATE_LIMITS: 'off', ...env },
    stdout: opts.quiet ? 'ignore' : 'inherit',
    stderr: 'inherit',
  })
  const url = `http://127.0.0.1:${port}`
  // Up to 30 s: a first embedded boot runs initdb.
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`${url}/`)).ok) return { url, proc }
    } catch {}
    await Bun.sleep(50)
  }
  proc.kill(9)
  throw new Error(`server on port ${port} did not start`)
}
