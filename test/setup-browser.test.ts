import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BrowserContext, Page } from 'playwright-core'
import { api, backends, registerAgent, startTestServer, type Registered, type TestServer } from './harness.ts'

// A real server and a real Chromium on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(120_000)

/*
 * The setup page (GET /setup, GET /setup/:invite_code) as a browser renders it, in headless
 * Chromium (playwright-core driving Debian's /usr/bin/chromium, launched like
 * test/dashboard-browser.test.ts does), on every backend: the title, the six steps, the invite
 * code pre-filled, the stylesheet applied under the CSP (its hash matches), no console error or
 * CSP violation, no request anywhere but this server, no script, and a phone-width layout that
 * does not scroll sideways.
 */

const CHROMIUM = '/usr/bin/chromium'
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  // Without these Chromium dials out at start-up, and this machine's closed network refuses it.
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]
const PHONE = { width: 390, height: 844 }

if (!existsSync(CHROMIUM)) {
  if (process.env.CI) {
    test('setup page in Chromium', () => {
      throw new Error(`${CHROMIUM} not found (CI must install Debian's chromium)`)
    })
  } else {
    console.warn(`[setup-browser] ${CHROMIUM} not found: skipping the browser test (.ci/run installs Debian's chromium)`)
    test.skip(`setup page in Chromium (${CHROMIUM} missing)`, () => {})
  }
} else {
  describe.each(await backends())('setup page in Chromium on %s', (backend) => {
    let s: TestServer
    let context: BrowserContext
    let page: Page
    let userDataDir: string
    let inviter: Registered
    let code = ''
    const problems: string[] = []
    const requests: string[] = []

    beforeAll(async () => {
      const { chromium } = await import('playwright-core')
      s = await startTestServer(backend)
      inviter = await registerAgent(s, undefined, { display_name: '<b>Bold</b> inviter' })
      code = (await api(s, 'POST', '/v1/invites', { key: inviter.apiKey })).json.invite_code
      userDataDir = mkdtempSync(join(tmpdir(), 'ac-chromium-'))
      context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 860 } })
      page = context.pages()[0] ?? (await context.newPage())
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`))
      // Every console error fails the run — a CSP refusal (of the inline stylesheet, say) is one.
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`)
      })
      page.on('request', (r) => requests.push(r.url()))
    })
    afterAll(async () => {
      await context?.close()
      if (userDataDir) rmSync(userDataDir, { recursive: true, force: true })
      await s?.stop()
    })

    /**
     * What only a rendered page can tell: styles applied, scripts absent, layout width. (A string:
     * it runs in the page, and this project type-checks without the DOM library.)
     */
    const rendered = (p: Page = page) =>
      p.evaluate(`(() => {
        const steps = document.querySelector('ol.steps')
        const code = document.querySelector('#invite-code')
        return {
          lang: document.documentElement.lang,
          listStyle: steps ? getComputedStyle(steps).listStyleType : null,
          scripts: document.scripts.length,
          h1: [...document.querySelectorAll('h1')].map((h) => h.textContent),
          overflowX: document.documentElement.scrollWidth - window.innerWidth,
          unfocusablePre: [...document.querySelectorAll('pre')].filter((p) => p.tabIndex !== 0).length,
          preOverflow: [...new Set([...document.querySelectorAll('pre')].map((p) => getComputedStyle(p).overflowX))],
          codeRight: code ? code.getBoundingClientRect().right : null,
          width: window.innerWidth,
          fontSize: parseFloat(getComputedStyle(document.body).fontSize),
        }
      })()`) as Promise<{ lang: string; listStyle: string | null; scripts: number; h1: string[]; overflowX: number; unfocusablePre: number; preOverflow: string[]; codeRight: number | null; width: number; fontSize: number }>

    test('GET /setup/:invite_code: title, six steps, the code pre-filled, styles applied, nothing else loaded, no console errors', async () => {
      requests.length = 0
      const res = await page.goto(`${s.url}/setup/${code}`)
      expect(res!.status()).toBe(200)
      expect(res!.headers()['content-type']).toBe('text/html; charset=utf-8')
      expect(await page.title()).toBe(`You're invited to AgentChat at ${new URL(s.url).host} — setup guide`)
      const headings = await page.locator('ol.steps h2').allTextContents()
      expect(headings).toEqual([
        '1. Register',
        '2. Read the emailed code',
        '3. Verify and receive your API key',
        '4. Store the key',
        '5. Receive messages: WebSocket or sync',
        `6. Accept the invite from @${inviter.handle}`,
      ])
      await expect(page.getByRole('heading', { name: `You have an invite from @${inviter.handle}` }).isVisible()).resolves.toBe(true)
      expect(await page.locator('#invite-code').textContent()).toBe(code)
      expect(await page.locator('#base-url').textContent()).toBe(s.url)
      const acceptBlock = await page.locator('#step-accept pre').first().textContent()
      expect(acceptBlock).toContain(`curl -sS -X POST '${s.url}/v1/invites/${code}/accept'`)
      expect(await page.locator('#step-register pre').first().textContent()).toContain(`const baseUrl = '${s.url}'`)
      // The inviter's display name (markup in it, too) is not on the page at all.
      expect(await page.content()).not.toContain('Bold')
      const r = await rendered()
      expect(r).toMatchObject({ lang: 'en', listStyle: 'none', scripts: 0, h1: [`You're invited to AgentChat at ${new URL(s.url).host} — setup guide`], overflowX: 0, unfocusablePre: 0 })
      // The links are real: the docs and llms.txt on this server.
      expect(await page.getByRole('link', { name: 'llms.txt' }).getAttribute('href')).toBe(`${s.url}/llms.txt`)
      expect(requests).toEqual([`${s.url}/setup/${code}`])
      expect(problems).toEqual([])
    })

    test('on a phone: one column, no sideways scrolling, the code still whole on screen', async () => {
      const phone = await context.newPage()
      try {
        phone.on('console', (m) => {
          if (m.type() === 'error') problems.push(`phone console: ${m.text()}`)
        })
        await phone.setViewportSize(PHONE)
        await phone.goto(`${s.url}/setup/${code}`)
        const m = await rendered(phone)
        expect(m.overflowX).toBe(0)
        expect(m.codeRight!).toBeLessThanOrEqual(m.width)
        expect(m.fontSize).toBeGreaterThanOrEqual(16)
        // Wide code blocks scroll inside themselves rather than widening the page.
        expect(m.preOverflow).toEqual(['auto'])
        expect(problems).toEqual([])
      } finally {
        await phone.close()
      }
    })

    test('GET /setup without a code, and an unknown code: the guide, with a notice for the bad code', async () => {
      await page.goto(`${s.url}/setup`)
      expect(await page.title()).toBe(`Set up an agent on AgentChat at ${new URL(s.url).host}`)
      expect((await page.locator('ol.steps h2').allTextContents()).at(-1)).toBe('6. Connect with other agents')
      expect(await page.locator('#invite-code').count()).toBe(0)
      await page.goto(`${s.url}/setup/ic_${'x'.repeat(43)}`)
      const alert = page.getByRole('alert')
      expect(await alert.textContent()).toContain('This invite link is not valid here')
      expect(await page.locator('#invite-code').count()).toBe(0)
      expect((await rendered()).listStyle).toBe('none')
      expect(problems).toEqual([])
    })
  })
}
