// Shared handleSummary: writes load/results/<suite>-<date>.json (k6's full summary) and a short
// markdown table, and prints that table (a custom handleSummary replaces k6's own stdout summary).

function fmt(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '—'
  if (Number.isInteger(v)) return String(v)
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)
}

export function table(data, rows) {
  const lines = ['| metric | value |', '| --- | ---: |']
  for (const [label, metric, stat] of rows) {
    const m = data.metrics[metric]
    lines.push(`| ${label} | ${m ? fmt(m.values[stat]) : '—'} |`)
  }
  const failed = Object.entries(data.metrics)
    .flatMap(([name, m]) => Object.entries(m.thresholds || {}).filter(([, t]) => !t.ok).map(([expr]) => `${name}: ${expr}`))
  lines.push('', failed.length === 0 ? 'All thresholds passed.' : `Failed thresholds:\n${failed.map((f) => `- \`${f}\``).join('\n')}`)
  return lines.join('\n')
}

export function summarize(suite, data, rows, extra = '') {
  // RESULT_TAG (e.g. "smoke") keeps short CI runs apart from the recorded full runs.
  if (__ENV.RESULT_TAG) suite = `${suite}-${__ENV.RESULT_TAG}`
  const date = new Date().toISOString().replace(/[:.]/g, '-')
  const md = `### ${suite} — ${new Date().toISOString()}\n\n${table(data, rows)}\n${extra}`
  return {
    stdout: `\n${md}\n`,
    [`load/results/${suite}-${date}.json`]: JSON.stringify(data, null, 2),
    [`load/results/${suite}-${date}.md`]: md + '\n',
  }
}
