/*
 * Content negotiation for the setup pages: HTML only when the client prefers it. Browsers send
 * `text/html` at q=1 (and `*∕*` lower), so they get HTML. Agents, curl (`*∕*`), fetch defaults, no
 * Accept header at all, `text/plain` and `text/markdown` get markdown: on a tie the answer is
 * markdown, since a reader that takes anything reads text best. Nothing is ever refused (no 406):
 * the guide is always worth answering with.
 */

interface Range {
  type: string
  subtype: string
  q: number
}

function parseAccept(header: string): Range[] {
  const out: Range[] = []
  for (const part of header.split(',')) {
    const [media, ...params] = part.trim().split(';')
    const m = /^([a-z0-9!#$%&'*+.^_`|~-]+)\/([a-z0-9!#$%&'*+.^_`|~-]+)$/i.exec((media ?? '').trim())
    if (!m) continue
    let q = 1
    for (const p of params) {
      const [k, v] = p.split('=').map((s) => s.trim())
      if (k?.toLowerCase() === 'q') {
        const n = Number(v)
        q = Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0
      }
    }
    out.push({ type: m[1]!.toLowerCase(), subtype: m[2]!.toLowerCase(), q })
  }
  return out
}

/** The q the Accept ranges give one media type: the most specific matching range decides. */
function qualityOf(ranges: Range[], type: string, subtype: string): number {
  let best = -1
  let q = 0
  for (const r of ranges) {
    const specificity = r.type === type && r.subtype === subtype ? 2 : r.type === type && r.subtype === '*' ? 1 : r.type === '*' && r.subtype === '*' ? 0 : -1
    if (specificity > best) {
      best = specificity
      q = r.q
    }
  }
  return q
}

export type SetupFormat = 'html' | 'markdown'

export function negotiate(accept: string | null): SetupFormat {
  if (!accept || accept.trim() === '') return 'markdown'
  const ranges = parseAccept(accept)
  const html = Math.max(qualityOf(ranges, 'text', 'html'), qualityOf(ranges, 'application', 'xhtml+xml'))
  const text = Math.max(qualityOf(ranges, 'text', 'markdown'), qualityOf(ranges, 'text', 'plain'))
  return html > text ? 'html' : 'markdown'
}
