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
const readmePath = join(ROOT, 'README.md')
const readme = readFileSync(readmePath, 'utf8')
writeFileSync(readmePath, readme.replace(/<!-- load:start -->[\s\S]*<!-- load:end -->/, `<!-- load:start -->\n${parts.join('\n\n')}\n<!-- load:end -->`))
console.log(`report: ${parts.length} suites, chart from ${benchFile}`)
