import { describe, expect, test } from 'bun:test'
import { negotiate } from '../../src/web/setup/negotiate.ts'
import { guideToHtml, inlineHtml } from '../../src/web/setup/render.ts'
import { buildGuide } from '../../src/web/setup/guide.ts'

describe('setup pages: Accept negotiation', () => {
  const cases: [string | null, 'html' | 'markdown'][] = [
    // Chromium, Firefox, Safari navigations
    ['text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7', 'html'],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'html'],
    ['application/xhtml+xml', 'html'],
    ['text/html', 'html'],
    // curl, fetch defaults, agents
    ['*/*', 'markdown'],
    [null, 'markdown'],
    ['', 'markdown'],
    ['text/markdown', 'markdown'],
    ['text/markdown, text/html;q=0.5', 'markdown'],
    ['text/plain', 'markdown'],
    ['text/*', 'markdown'],
    ['application/json', 'markdown'],
    ['text/html;q=0.4, text/markdown;q=0.6', 'markdown'],
    ['text/html;q=0.9, */*;q=0.1', 'html'],
    ['text/html;q=0, */*', 'markdown'],
    ['garbage;;;,,', 'markdown'],
  ]
  for (const [accept, want] of cases) test(`${JSON.stringify(accept)} → ${want}`, () => expect(negotiate(accept)).toBe(want))
})

describe('setup pages: HTML escaping', () => {
  test('inline markup escapes everything and links only http(s)', () => {
    expect(inlineHtml('a <b> & "c" `<x>` **<y>**')).toBe('a &lt;b&gt; &amp; &quot;c&quot; <code>&lt;x&gt;</code> <strong>&lt;y&gt;</strong>')
    expect(inlineHtml('[docs](http://h/docs)')).toBe('<a href="http://h/docs">docs</a>')
    expect(inlineHtml('[x](javascript:alert(1))')).not.toContain('<a')
  })
  test('a hostile base URL is inert in the page', () => {
    const html = guideToHtml(buildGuide('http://h/"><script>alert(1)</script>', { mailDelivered: true }))
    expect(html).not.toContain('<script')
    expect(html).toContain('&lt;script&gt;')
  })
})
