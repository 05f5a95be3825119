/*
 * Splits the integration suite into N groups of about equal wall time, for `.ci/run`, which runs
 * them side by side: the tests mostly wait (on servers, sockets, timers), so two groups on two
 * cores finish in a little over half the time. Longest first onto the least loaded group; the
 * weights are seconds measured in CI (all four backends, server starts included), and a file not
 * listed counts as 10 s.
 *
 *   bun scripts/split-tests.ts 2 0   → the files of group 0 of 2, space-separated
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

const WEIGHTS: Record<string, number> = {
  'safety.test.ts': 95,
  'expiry.test.ts': 90,
  'longpoll.test.ts': 80,
  'realtime.test.ts': 65,
  'webhooks.test.ts': 60,
  'metrics.test.ts': 55,
  'cli.test.ts': 45,
  'owners.test.ts': 40,
  'longpoll-cluster.test.ts': 40,
  'cluster.test.ts': 40,
  'server-lifecycle.test.ts': 30,
  'fuzz.test.ts': 30,
  'messaging.test.ts': 28,
  'dashboard-browser.test.ts': 28,
  'mcp.test.ts': 25,
  'invites.test.ts': 18,
  'groups.test.ts': 18,
  'owner-approval.test.ts': 18,
  'contention.test.ts': 16,
  'durability.test.ts': 16,
  'operators.test.ts': 14,
  'extensions.test.ts': 14,
  'setup-browser.test.ts': 12,
}

const [n, index] = process.argv.slice(2).map(Number)
if (!n || n < 1 || index === undefined || !(index >= 0 && index < n)) {
  console.error('usage: bun scripts/split-tests.ts <groups> <index>')
  process.exit(2)
}
const dir = join(import.meta.dir, '..', 'test')
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => ({ f, w: WEIGHTS[f] ?? 10 }))
  .sort((a, b) => b.w - a.w || a.f.localeCompare(b.f))
const groups = Array.from({ length: n }, () => ({ w: 0, files: [] as string[] }))
for (const x of files) {
  const g = groups.reduce((min, g) => (g.w < min.w ? g : min))
  g.w += x.w
  g.files.push(`./test/${x.f}`)
}
// The unit tests (test/unit/, fast) go with the first group.
const out = groups[index]!.files
if (index === 0) out.push("./test/unit")
console.log(out.join(' '))
