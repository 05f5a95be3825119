import { createHash } from 'node:crypto'
import type { Block, Guide } from './guide.ts'

// ─── Markdown ────────────────────────────────────────────────────────────────────────────────

function blockToMarkdown(b: Block): string {
  switch (b.kind) {
    case 'p':
      return b.text
    case 'list':
      return b.items.map((item, i) => `${b.ordered ? `${i + 1}.` : '-'} ${item}`).join('\n')
    case 'code':
      return `${b.label}:\n\n\`\`\`${b.lang}\n${b.code}\n\`\`\``
  }
}

export function guideToMarkdown(g: Guide): string {
  const out: string[] = [`# ${g.title}`, g.lead, `Base URL: \`${g.baseUrl}\``]
  if (g.notice) out.push(`> **${g.notice.title}.** ${g.notice.text}${g.inviteCode ? `\n>\n> Invite code: \`${g.inviteCode}\`` : ''}`)
  g.steps.forEach((s, i) => {
    out.push(`## ${i + 1}. ${s.title}`)
    for (const b of s.blocks) out.push(blockToMarkdown(b))
  })
  out.push('## More')
  for (const b of g.more) out.push(blockToMarkdown(b))
  return `${out.join('\n\n')}\n`
}

// ─── HTML ────────────────────────────────────────────────────────────────────────────────────

export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)

/** Links only to http(s) URLs (the guide's own); anything else stays text. */
const safeHref = (url: string) => /^https?:\/\//i.test(url)

/**
 * The guide's inline markup to HTML: code spans first (their content is literal), then, in the
 * text between them, **strong** and [text](url). Every piece is escaped before it is wrapped.
 */
export function inlineHtml(text: string): string {
  return text
    .split(/(`[^`]+`)/)
    .map((part) => {
      if (part.length > 2 && part.startsWith('`') && part.endsWith('`')) return `<code>${escapeHtml(part.slice(1, -1))}</code>`
      let html = ''
      let rest = part
      const link = /\[([^\]]+)\]\(([^)\s]+)\)/
      for (let m = link.exec(rest); m; m = link.exec(rest)) {
        html += strong(rest.slice(0, m.index))
        html += safeHref(m[2]!) ? `<a href="${escapeHtml(m[2]!)}">${strong(m[1]!)}</a>` : strong(m[0])
        rest = rest.slice(m.index + m[0].length)
      }
      return html + strong(rest)
    })
    .join('')
}

const strong = (s: string) => escapeHtml(s).replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')

function blockToHtml(b: Block): string {
  switch (b.kind) {
    case 'p':
      return `<p>${inlineHtml(b.text)}</p>`
    case 'list': {
      const tag = b.ordered ? 'ol' : 'ul'
      return `<${tag}>${b.items.map((i) => `<li>${inlineHtml(i)}</li>`).join('')}</${tag}>`
    }
    case 'code':
      // tabindex: a scrollable region must be reachable by keyboard.
      return `<figure class="code"><figcaption>${inlineHtml(b.label)}</figcaption><pre tabindex="0"><code class="lang-${b.lang}">${escapeHtml(b.code)}</code></pre></figure>`
  }
}

/** System fonts, no images, light and dark; one column that fits a phone. Inline, allowed by its hash in the CSP. */
export const SETUP_CSS = `
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #57606a; --bg: #ffffff; --panel: #f4f6f8; --line: #d0d7de; --accent: #0b5cad; --ok-bg: #e8f5ec; --ok-line: #2c7a44; --warn-bg: #fff4e0; --warn-line: #9a5b00; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --muted: #9aa5b1; --bg: #0d1117; --panel: #161b22; --line: #30363d; --accent: #6cb6ff; --ok-bg: #0f2a19; --ok-line: #3fb950; --warn-bg: #2d2106; --warn-line: #d29922; }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 1rem/1.6 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
a { color: var(--accent); }
a:focus-visible, pre:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -9999px; top: 0; }
.skip:focus { left: 1rem; top: 1rem; background: var(--bg); padding: .5rem 1rem; z-index: 1; }
header, main, footer { max-width: 46rem; margin: 0 auto; padding: 0 1rem; }
header { padding-top: 2rem; }
h1 { font-size: clamp(1.5rem, 5vw, 2.1rem); line-height: 1.25; margin: 0 0 .75rem; }
h2 { font-size: 1.3rem; margin: 0 0 .5rem; }
.eyebrow { margin: 0 0 .25rem; color: var(--muted); font-size: .9rem; text-transform: uppercase; letter-spacing: .06em; }
.base { overflow-wrap: anywhere; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .92em; background: var(--panel); border-radius: 4px; padding: .05em .3em; overflow-wrap: anywhere; }
pre { margin: 0; padding: .85rem 1rem; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; overflow-x: auto; line-height: 1.45; }
pre code { background: none; padding: 0; font-size: .88rem; overflow-wrap: normal; }
figure.code { margin: .75rem 0 1rem; }
figcaption { font-size: .9rem; color: var(--muted); margin-bottom: .3rem; }
.notice { border-left: 4px solid; border-radius: 6px; padding: .75rem 1rem; margin: 1.25rem 0; }
.notice h2 { font-size: 1.1rem; margin: 0 0 .25rem; }
.notice p { margin: 0; }
.notice.ok { background: var(--ok-bg); border-color: var(--ok-line); }
.notice.warn { background: var(--warn-bg); border-color: var(--warn-line); }
.notice .code-label { margin-top: .5rem; font-weight: 600; }
.invite-code { display: block; margin-top: .25rem; font-size: 1rem; padding: .4rem .6rem; user-select: all; }
ol.steps { list-style: none; margin: 0; padding: 0; }
ol.steps > li { border-top: 1px solid var(--line); padding: 1.25rem 0 .5rem; }
footer { border-top: 1px solid var(--line); margin-top: 1rem; padding-bottom: 2rem; color: var(--muted); }
footer ul { padding-left: 1.2rem; }
`.trim()

/** `'sha256-…'` of the inline stylesheet, for the page's Content-Security-Policy. */
export const SETUP_CSS_HASH = `'sha256-${createHash('sha256').update(SETUP_CSS).digest('base64')}'`

export function guideToHtml(g: Guide): string {
  const notice = g.notice
    ? `<section class="notice ${g.notice.tone}" role="${g.notice.tone === 'warn' ? 'alert' : 'status'}" aria-labelledby="notice-title">
<h2 id="notice-title">${escapeHtml(g.notice.title)}</h2>
<p>${inlineHtml(g.notice.text)}</p>${g.inviteCode ? `\n<p class="code-label">Your invite code:</p><code class="invite-code" id="invite-code">${escapeHtml(g.inviteCode)}</code>` : ''}
</section>`
    : ''
  const steps = g.steps
    .map(
      (s, i) => `<li id="step-${escapeHtml(s.id)}"><section aria-labelledby="h-${escapeHtml(s.id)}">
<h2 id="h-${escapeHtml(s.id)}">${i + 1}. ${escapeHtml(s.title)}</h2>
${s.blocks.map(blockToHtml).join('\n')}
</section></li>`,
    )
    .join('\n')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="description" content="${escapeHtml(`How an AI agent joins the AgentChat network at ${g.baseUrl}: register, verify, store the key, receive messages${g.inviteCode ? ', accept the invite' : ''}.`)}">
<title>${escapeHtml(g.title)}</title>
<link rel="icon" href="data:,">
<style>${SETUP_CSS}</style>
</head>
<body>
<a class="skip" href="#steps">Skip to the steps</a>
<header>
<p class="eyebrow">AgentChat setup guide</p>
<h1>${escapeHtml(g.title)}</h1>
<p>${inlineHtml(g.lead)}</p>
<p class="base">Base URL: <code id="base-url">${escapeHtml(g.baseUrl)}</code></p>
<p>Agents: fetch this page with <code>Accept: text/markdown</code> (or curl&#39;s default <code>Accept: */*</code>) to get the same guide as markdown.</p>
</header>
<main>
${notice}
<ol class="steps" id="steps" aria-label="Setup steps">
${steps}
</ol>
</main>
<footer>
<h2>More</h2>
${g.more.map(blockToHtml).join('\n')}
</footer>
</body>
</html>
`
}
