/**
 * `bun run report` — regenerates the README's load-suite tables (the newest load/results/<suite>-*.md
 * per suite) and the throughput-vs-latency chart (docs/throughput-latency.svg) from the newest
 * `bun run bench` result. Nothing here is typed in by hand.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const ROOT = join(import.meta.dir, '..')
const newest = (dir: string, prefix: string, ext: string) =>
  readdirSync(join(ROOT, dir))
    .filter((f) => f.startsWith(prefix) && f.endsWith(ext) && !f.includes('-rss-') && !f.includes('-smoke-') && (prefix !== 'rate-limit-' || !f.startsWith('rate-limit-2proc')))
    .sort()
    .at(-1)

// 1. Load-suite tables.
const suites = ['rate-limit', 'rate-limit-2proc', 'backlog', 'throughput', 'fanout', 'soak']
const parts: string[] = []
for (const suite of suites) {
  const f = newest('load/results', `${suite}-`, '.md')
  if (f) parts.push(readFileSync(join(ROOT, 'load/results', f), 'utf8').trim() + `\n\n<sub>from \`load/results/${f}\`</sub>`)
  else parts.push(`### ${suite}\n\nNo run recorded yet.`)
}
// 2. Chart: accepted sends/s against send latency p50/p99 from the newest direct-send bench.
const benchFile = readdirSync(join(ROOT, 'bench/results')).filter((f) => /^direct-\d/.test(f)).sort().at(-1)
if (benchFile) {
  const bench = JSON.parse(readFileSync(join(ROOT, 'bench/results', benchFile), 'utf8'))
  const levels: { accepted_per_s: number; send_p50_ms: number; send_p99_ms: number }[] = bench.levels ?? bench.runs?.[0]?.levels ?? []
  const W = 640, H = 360, L = 60, B = 40, T = 30, R = 20
  const maxX = Math.max(...levels.map((l) => l.accepted_per_s)) * 1.1
  const maxY = Math.max(...levels.map((l) => l.send_p99_ms)) * 1.1
  const x = (v: number) => L + (v / maxX) * (W - L - R)
  const y = (v: number) => H - B - (v / maxY) * (H - B - T)
  const line = (key: 'send_p50_ms' | 'send_p99_ms', color: string) =>
    `<polyline fill="none" stroke="${color}" stroke-width="2" points="${levels.map((l) => `${x(l.accepted_per_s).toFixed(1)},${y(l[key]).toFixed(1)}`).join(' ')}"/>` +
    levels.map((l) => `<circle cx="${x(l.accepted_per_s).toFixed(1)}" cy="${y(l[key]).toFixed(1)}" r="3" fill="${color}"/>`).join('')
  const ticks = (n: number, max: number, f: (v: number) => string) => Array.from({ length: n + 1 }, (_, i) => f((max * i) / n))
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">Direct sends: accepted/s vs send latency (${benchFile.replace('.json', '')})</text>
<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#333"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#333"/>
${ticks(5, maxX, (v) => `<text x="${x(v).toFixed(1)}" y="${H - B + 15}" text-anchor="middle">${Math.round(v)}</text>`).join('')}
${ticks(5, maxY, (v) => `<text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${Math.round(v)}</text>`).join('')}
<text x="${W / 2}" y="${H - 6}" text-anchor="middle">accepted sends per second</text>
<text x="14" y="${H / 2}" text-anchor="middle" transform="rotate(-90 14 ${H / 2})">send latency (ms)</text>
${line('send_p50_ms', '#2b7bb9')}${line('send_p99_ms', '#d9534f')}
<text x="${W - R - 90}" y="${T + 10}" fill="#2b7bb9">— p50</text><text x="${W - R - 90}" y="${T + 24}" fill="#d9534f">— p99</text>
</svg>\n`
  writeFileSync(join(ROOT, 'docs/throughput-latency.svg'), svg)
}
// 3. Benchmark tables, from the newest bench/results/<name>-*.json of each kind (before/after pairs
// are measured in one sitting with --server-dir).
// `<name>-` followed by the timestamp, so `direct-` does not also match `direct-before-…`.
const newestBench = (prefix: string) => readdirSync(join(ROOT, 'bench/results')).filter((f) => f.startsWith(prefix) && /^\d{4}-\d{2}-\d{2}T/.test(f.slice(prefix.length))).sort().at(-1)
const load = (f: string) => JSON.parse(readFileSync(join(ROOT, 'bench/results', f), 'utf8'))
const tables: string[] = []
for (const [prefix, label] of [['direct-before-', 'before (envelope rows, unordered concurrent flushes)'], ['direct-', 'after (cursors, lanes, ordered locks)']] as const) {
  const f = newestBench(prefix)
  if (!f) continue
  const r = load(f)
  const c = r.ceiling
  tables.push(`**Direct sends, ${label}** — \`${f}\`; this run's Postgres ceiling: ${c.single_row_commits_per_s} single-row commits/s, ${c.batch100_rows_per_s} rows/s in 100-row batches (8 clients).

| offered/s | accepted/s | of batch ceiling | send p50 ms | p95 | p99 | delivery p50 ms | p99 | lost | errors | 503 | CPU µs/msg: server / Postgres / generator / total | Postgres statements µs/msg | machine busy |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${r.runs[0].levels.map((l: any) => `| ${l.target_rate} | ${l.accepted_per_s} | ${(l.accepted_of_ceiling * 100).toFixed(1)} % | ${l.send_p50_ms} | ${l.send_p95_ms} | ${l.send_p99_ms} | ${l.delivery_p50_ms} | ${l.delivery_p99_ms} | ${l.lost} | ${l.errors} | ${l.unavailable_503} | ${l.cpu_us_per_msg.server} / ${l.cpu_us_per_msg.postgres} / ${l.cpu_us_per_msg.generator} / ${l.cpu_us_per_msg.total} | ${l.pg_statement_us_per_msg ?? 'n/a'} | ${l.machine_busy_pct} % |`).join('\n')}`)
}
for (const [prefix, label] of [['fanout-before-', 'before (an envelope row per member per message)'], ['fanout-', 'after (one row per message, member cursors)']] as const) {
  const f = newestBench(prefix)
  if (!f) continue
  const r = load(f)
  tables.push(`**Group fan-out, ${label}** — \`${f}\`; ${r.config.groups} groups × ${r.config.members} members; this run's WebSocket publish ceiling: ${r.publish_ceiling_frames_per_s ?? 'n/a'} frames/s.

| msgs/s per group | messages/s | delivered frames/s | of publish ceiling | delivery p50 ms | p99 | errors | CPU µs/frame: server / Postgres / generator | RSS MB |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${r.levels.map((l: any) => `| ${l.per_group_rate} | ${l.messages_per_s} | ${l.delivered_frames_per_s} | ${l.of_publish_ceiling === undefined ? 'n/a' : (l.of_publish_ceiling * 100).toFixed(1) + ' %'} | ${l.delivery_p50_ms} | ${l.delivery_p99_ms} | ${l.errors} | ${l.cpu_us_per_frame ? `${l.cpu_us_per_frame.server} / ${l.cpu_us_per_frame.postgres} / ${l.cpu_us_per_frame.generator}` : 'n/a'} | ${l.server_rss_mb} |`).join('\n')}`)
}
for (const [prefix, label] of [['embedded-before-', 'before (PGlite on the server thread)'], ['embedded-', 'after (PGlite in its own worker thread)']] as const) {
  const f = newestBench(prefix)
  if (!f) continue
  const r = load(f)
  const rows = r.runs.map((x: any) => `| ${x.setup} | ${x.flood.accepted_per_s} of ${x.flood.offered_per_s} | ${x.flood.send_p50_ms} / ${x.flood.send_p99_ms} | ${x.flood.health_p50_ms} / ${x.flood.health_p99_ms} / ${x.flood.health_max_ms} | ${x.flood.root_p50_ms} / ${x.flood.root_p99_ms} / ${x.flood.root_max_ms} | ${x.restart_ms ?? '—'} |`)
  const lv = r.runs.flatMap((x: any) => x.levels.map((l: any) => `| ${x.setup} | ${l.offered_per_s} | ${l.accepted_per_s} | ${l.send_p50_ms} | ${l.send_p99_ms} | ${l.delivery_p50_ms} | ${l.delivery_p99_ms} | ${l.errors} | ${l.health_p99_ms} |`))
  tables.push(`**Embedded default under a write flood, ${label}** — \`${f}\`; ${r.config.flood}, probes: ${r.config.probes}.

| backend | flood accepted/s | send p50 / p99 ms | health p50 / p99 / max ms | GET / p50 / p99 / max ms | restart on existing data, ms to healthy |
| --- | ---: | ---: | ---: | ---: | ---: |
${rows.join('\n')}

| backend | offered/s | accepted/s | send p50 ms | p99 | delivery p50 ms | p99 | errors | health p99 ms |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${lv.join('\n')}`)
}
const readmePath = join(ROOT, 'README.md')
let readme = readFileSync(readmePath, 'utf8')
readme = readme.replace(/<!-- load:start -->[\s\S]*<!-- load:end -->/, `<!-- load:start -->\n${parts.join('\n\n')}\n<!-- load:end -->`)
readme = readme.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, `<!-- bench:start -->\n${tables.join('\n\n')}\n<!-- bench:end -->`)
writeFileSync(readmePath, readme)
console.log(`report: ${parts.length} suites, chart from ${benchFile}`)
