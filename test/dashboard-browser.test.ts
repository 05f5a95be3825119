import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import type { BrowserContext, Page } from 'playwright-core'
import { api, backends, clearOtpLog, readCode, registerAgent, rejection, startTestServer, WsProbe, type Backend, type Registered, type TestServer } from './harness.ts'
import { OwnerClient } from './owner-client.ts'

// A real server and a real Chromium on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(120_000)

/*
 * The owner dashboard page (GET /dashboard) end to end in headless Chromium (playwright-core
 * driving Debian's /usr/bin/chromium), against the real server on the embedded backend and on a
 * sharded `bun src/main.ts` (SHARDS=2, Postgres + Redis): sign-in by emailed code, claiming by
 * pasted key (and the claim errors), live messages over the dashboard socket, pause/unpause with
 * the effect checked through the official SDK, the timeline with "load older", release, the
 * refresh-and-retry on an expired access cookie, socket reconnect, and both sign-outs.
 *
 * SCREENSHOTS=1 (`bun run screenshots`) also writes docs/screenshots/*.png at a desktop and a
 * phone viewport.
 */

const CHROMIUM = '/usr/bin/chromium'
const SHOTS = process.env.SCREENSHOTS === '1'
const SHOT_DIR = join(import.meta.dir, '..', 'docs', 'screenshots')
const DESKTOP = { width: 1280, height: 860 }
const PHONE = { width: 390, height: 844 }
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

const selected = (await backends()).filter((b): b is Backend => b === 'embedded' || b === 'sharded')

let n = 0
const ownerEmail = () => `boss-${Date.now().toString(36)}${(n++).toString(36)}@example.test`

if (!existsSync(CHROMIUM)) {
  if (process.env.CI) {
    // .ci/run installs Debian's chromium: missing there, it is a failure, not a skip.
    test('dashboard page in Chromium', () => {
      throw new Error(`${CHROMIUM} not found (CI must install Debian's chromium)`)
    })
  } else {
    console.warn(`[dashboard-browser] ${CHROMIUM} not found: skipping the browser test (.ci/run installs Debian's chromium)`)
    test.skip(`dashboard page in Chromium (${CHROMIUM} missing)`, () => {})
  }
} else if (selected.length === 0) {
  console.warn('[dashboard-browser] neither the embedded nor the sharded backend is selected: nothing to run')
  test.skip('dashboard page in Chromium (no embedded/sharded backend selected)', () => {})
} else {
  describe.each(selected)('dashboard page on %s', (backend) => {
    let s: TestServer
    let context: BrowserContext
    let page: Page
    let userDataDir: string
    const problems: string[] = []
    // Each backend's server is fresh: fixed names are free (and read well in the screenshots).
    const email = 'owner@example.test'

    beforeAll(async () => {
      const { chromium } = await import('playwright-core')
      s = await startTestServer(backend, { ACK_FLUSH_MS: '50' })
      userDataDir = mkdtempSync(join(tmpdir(), 'ac-chromium-'))
      context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: DESKTOP })
      page = context.pages()[0] ?? (await context.newPage())
      watch(page)
      if (SHOTS) mkdirSync(SHOT_DIR, { recursive: true })
    })
    afterAll(async () => {
      await context?.close()
      if (userDataDir) rmSync(userDataDir, { recursive: true, force: true })
      await s?.stop()
    })

    /**
     * Uncaught errors and console errors (CSP refusals among them) fail the run; the browser's own
     * line for each error answer the test provokes (401 at a signed-out start, 409, 429…) does not.
     */
    function watch(p: Page) {
      p.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`))
      p.on('console', (m) => {
        if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) problems.push(`console: ${m.text()}`)
      })
    }

    const messageItem = (id: string) => page.locator(`#messages li[data-id="${id}"]`)
    const liveText = () => page.locator('#live-text').textContent()

    async function until(pred: () => Promise<boolean> | boolean, what: string, ms = 10_000) {
      const end = Date.now() + ms
      while (!(await pred())) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
        await Bun.sleep(50)
      }
    }

    /** Desktop, then the same screen on a phone (a second tab on this session). */
    async function shoot(name: string, prepare?: (p: Page) => Promise<void>) {
      if (!SHOTS) return
      await prepare?.(page)
      await page.screenshot({ path: join(SHOT_DIR, `${name}-desktop.png`), animations: 'disabled' })
      const phone = await context.newPage()
      watch(phone)
      await phone.setViewportSize(PHONE)
      await phone.goto(page.url())
      await phone.locator('#loading').waitFor({ state: 'hidden' })
      if (await phone.locator('#session').isVisible()) await phone.locator('#live-text', { hasText: /^Live$/ }).waitFor()
      await Bun.sleep(300)
      await prepare?.(phone)
      await phone.screenshot({ path: join(SHOT_DIR, `${name}-phone.png`), animations: 'disabled' })
      await phone.close()
    }

    /** Through the page: email, then the code from MAIL_DIR. */
    async function signInInPage() {
      await clearOtpLog(s, email)
      await page.getByRole('heading', { name: 'Sign in' }).waitFor()
      await page.getByLabel('Email address').fill(email)
      const started = Date.now() - 5
      await page.getByRole('button', { name: 'Email me a code' }).click()
      const code = await readCode(s.mailDir, email, started)
      await page.getByLabel('6-digit code').fill(code)
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.getByRole('heading', { name: 'Your agents' }).waitFor()
      await until(async () => (await liveText()) === 'Live', 'the dashboard socket')
    }

    async function claimInPage(key: string) {
      await page.getByLabel('Agent API key').fill(key)
      const answered = page.waitForResponse((r) => r.url().endsWith('/dashboard/agents/claim'))
      await page.getByRole('button', { name: 'Claim agent' }).click()
      return (await answered).status()
    }

    test('GET /dashboard: the page and its assets, with a strict CSP, nosniff, no-referrer and fitting caching', async () => {
      const r = await api(s, 'GET', '/dashboard')
      expect(r.status).toBe(200)
      expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8')
      expect(r.headers.get('cache-control')).toBe('no-store')
      const csp = r.headers.get('content-security-policy')!
      expect(csp).toContain("default-src 'none'")
      expect(csp).toContain("script-src 'self'")
      expect(csp).toContain("style-src 'self'")
      expect(csp).toContain("frame-ancestors 'none'")
      expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/)
      expect(r.headers.get('x-content-type-options')).toBe('nosniff')
      expect(r.headers.get('referrer-policy')).toBe('no-referrer')
      // Nothing third-party: every script, stylesheet and icon is this server's.
      const refs = [...r.text.matchAll(/(?:src|href)="([^"#]+)"/g)].map((m) => m[1]!)
      expect(refs.length).toBeGreaterThanOrEqual(3)
      for (const ref of refs) {
        expect(ref.startsWith('/dashboard/assets/')).toBe(true)
        const a = await api(s, 'GET', ref)
        expect(a.status).toBe(200)
        expect(a.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
        expect(a.headers.get('x-content-type-options')).toBe('nosniff')
      }
      expect((await api(s, 'GET', '/dashboard/assets/app.js')).headers.get('content-type')).toBe('text/javascript; charset=utf-8')
      expect((await api(s, 'GET', '/dashboard/assets/app.js')).headers.get('cache-control')).toBe('no-cache')
      const missing = await api(s, 'GET', '/dashboard/assets/..%2Fapp.ts')
      expect(missing.status).toBe(404)
      expect(missing.json.code).toBe('NOT_FOUND')
      // Hidden from the API reference.
      const spec = await api(s, 'GET', '/v1/openapi.json')
      expect(Object.keys(spec.json.paths)).not.toContain('/dashboard')
    })

    let a: Registered // claimed, online, the conversation under test
    let b: Registered // not claimed: a's counterpart
    let c: Registered // claimed, offline, released later
    let conversationId = ''
    let probe: WsProbe

    test('sign in with the emailed code, claim agents by key, see status, pause state and presence', async () => {
      await page.goto(`${s.url}/dashboard`)
      await page.getByRole('heading', { name: 'Sign in' }).waitFor()
      await shoot('signin')
      // A wrong code is shown as an error, and the right one then signs in.
      await clearOtpLog(s, email)
      await page.getByLabel('Email address').fill(email)
      const started = Date.now() - 5
      await page.getByRole('button', { name: 'Email me a code' }).click()
      const code = await readCode(s.mailDir, email, started)
      await page.getByLabel('6-digit code').fill(code === '000000' ? '111111' : '000000')
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.locator('#code-error', { hasText: 'That code is not right' }).waitFor()
      await page.getByLabel('6-digit code').fill(code)
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.getByRole('heading', { name: 'Your agents' }).waitFor()
      await until(async () => (await liveText()) === 'Live', 'the dashboard socket')
      expect(await page.locator('#owner-email').textContent()).toBe(email)
      // The session cookies are http-only: the page's script cannot read them.
      expect(await page.evaluate('document.cookie')).toBe('')
      expect((await context.cookies()).map((x) => x.name).sort()).toEqual(['ac_dashboard_refresh', 'ac_dashboard_session'])

      a = await registerAgent(s, 'research-bot', { display_name: 'Research assistant', description: 'Reads papers and summarises them for the team.' })
      b = await registerAgent(s, 'travel-planner', { display_name: 'Travel planner' })
      c = await registerAgent(s, 'inbox-triage', { display_name: 'Inbox triage' })
      probe = await new WsProbe(s.url).hello(a.apiKey, [])

      expect(await claimInPage(a.apiKey)).toBe(201)
      await page.locator('#claim-done', { hasText: `Claimed @${a.handle}.` }).waitFor()
      expect(await page.getByLabel('Agent API key').inputValue()).toBe('')
      expect(await claimInPage(c.apiKey)).toBe(201)
      await page.locator('#claim-done', { hasText: `Claimed @${c.handle}.` }).waitFor()
      const cardA = page.locator(`#agent-list li[data-handle="${a.handle}"]`)
      const cardC = page.locator(`#agent-list li[data-handle="${c.handle}"]`)
      await cardA.locator('.presence', { hasText: 'online' }).waitFor()
      await cardC.locator('.presence', { hasText: 'offline' }).waitFor()
      expect(await cardA.locator('.agent-link').textContent()).toBe('Research assistant')
      expect(await cardA.textContent()).toContain(`@${a.handle}`)
      expect(await cardA.locator('.paused').count()).toBe(0)
    })

    test('claim errors are shown plainly: INVALID_API_KEY, ALREADY_CLAIMED, then TOO_MANY_CLAIMS', async () => {
      expect(await claimInPage('ac_this-is-not-a-real-key')).toBe(404)
      await page.locator('#claim-error', { hasText: 'No agent has this API key' }).waitFor()
      expect(await page.getByLabel('Agent API key').getAttribute('aria-invalid')).toBe('true')
      // Someone else's agent.
      const other = new OwnerClient(s, ownerEmail())
      await other.signIn()
      const d = await registerAgent(s)
      expect((await other.claim(d.apiKey)).status).toBe(201)
      for (let i = 0; i < 5; i++) expect(await claimInPage(d.apiKey)).toBe(409)
      await page.locator('#claim-error', { hasText: 'This agent already has an owner' }).waitFor()
      expect(await claimInPage(d.apiKey)).toBe(429)
      await page.locator('#claim-error', { hasText: 'Too many claim attempts on this agent' }).waitFor()
      expect(await page.locator(`#agent-list li[data-handle="${d.handle}"]`).count()).toBe(0)
      await page.getByLabel('Agent API key').fill('')
      await page.evaluate("document.getElementById('claim-error').hidden = document.getElementById('claim-done').hidden = true")
      await shoot('agents')
    })

    test('open the conversation; messages sent to and by the agent appear live, as text only', async () => {
      const first = await a.client.sendMessage({ to: b.handle, content: { text: 'Hi! Could you find me three hotels near the venue for 12–14 March?' } })
      conversationId = first.message.conversation_id
      await b.client.sendMessage({ to: a.handle, content: { text: 'Sure — what is the budget per night?' } })
      await page.locator(`#agent-list li[data-handle="${a.handle}"] .agent-link`).click()
      await page.getByRole('heading', { name: /Research assistant/ }).waitFor()
      await page.locator(`#conv-list a[data-conversation="${conversationId}"]`).click()
      await page.locator('#thread-title', { hasText: 'Travel planner' }).waitFor()
      await messageItem(first.message.id).waitFor()
      expect(await page.locator('#messages li.msg').count()).toBe(2)
      expect(await page.locator(`#conv-list a[aria-current="true"]`).getAttribute('data-conversation')).toBe(conversationId)

      // Live, without a reload: a marker on the window survives.
      await page.evaluate('window.marker = 42')
      const incoming = await b.client.sendMessage({ to: a.handle, content: { text: 'Around €180 works. Here are three options.' } })
      await messageItem(incoming.message.id).locator('.text', { hasText: 'Around €180 works.' }).waitFor()
      expect(await messageItem(incoming.message.id).getAttribute('class')).toBe('msg')
      expect(await messageItem(incoming.message.id).locator('.sender').textContent()).toBe(`@${b.handle}`)
      const outgoing = await a.client.sendMessage({ to: b.handle, content: { text: 'Perfect, please book the second one.' } })
      await messageItem(outgoing.message.id).locator('.text', { hasText: 'Perfect, please book the second one.' }).waitFor()
      expect(await messageItem(outgoing.message.id).getAttribute('class')).toBe('msg own')
      expect(await messageItem(outgoing.message.id).locator('.sender').textContent()).toBe(`@${a.handle} (this agent)`)
      // Untrusted content stays text: markup is shown, never run or rendered.
      const hostile = await b.client.sendMessage({ to: a.handle, content: { text: '<img src=x onerror="window.pwned=1"><b>bold?</b>' }, metadata: { note: '<script>' } })
      await messageItem(hostile.message.id).waitFor()
      expect(await messageItem(hostile.message.id).locator('.text').textContent()).toBe('<img src=x onerror="window.pwned=1"><b>bold?</b>')
      expect(await page.locator('#messages img, #messages b, #messages script').count()).toBe(0)
      expect(await page.evaluate('window.pwned')).toBeUndefined()
      expect(await page.evaluate('window.marker')).toBe(42)
      // Structured data is shown as JSON text.
      const structured = await a.client.sendMessage({ to: b.handle, type: 'structured', content: { text: 'Booking confirmed', data: { hotel: 'Hotel Zentral', nights: 2 } } })
      await messageItem(structured.message.id).locator('pre.data', { hasText: '"hotel": "Hotel Zentral"' }).waitFor()
      await shoot('conversation', (p) => p.evaluate("document.getElementById('thread').scrollIntoView({ block: 'start' })"))
    })

    test('pause (send) in the page: the SDK send is refused with AGENT_PAUSED_BY_OWNER; unpause: it succeeds; the timeline lists both', async () => {
      // The access cookie is gone (as after its hour): the page refreshes the session and retries.
      const before = (await context.cookies()).find((x) => x.name === 'ac_dashboard_session')!.value
      await context.clearCookies({ name: 'ac_dashboard_session' })
      await page.getByRole('button', { name: 'Pause sending' }).click()
      await page.locator('#pause-state', { hasText: 'Sending is paused' }).waitFor()
      const after = (await context.cookies()).find((x) => x.name === 'ac_dashboard_session')?.value
      expect(after).toBeDefined()
      expect(after).not.toBe(before)
      expect(await page.getByRole('button', { name: 'Pause sending' }).getAttribute('aria-pressed')).toBe('true')
      await page.locator('#agent-badges .paused', { hasText: 'Sending paused' }).waitFor()
      await shoot('paused', (p) => p.evaluate('window.scrollTo(0, 0)'))
      const refused = await rejection(a.client.sendMessage({ to: b.handle, content: { text: 'Should not go out' } }))
      expect(refused.code).toBe('AGENT_PAUSED_BY_OWNER')
      await page.locator('#events li[data-action="agent.paused"]').first().waitFor()
      expect(await page.locator('#events li[data-action="agent.paused"]').first().textContent()).toContain('mode: send')
      // It still receives, and the owner still sees that live.
      const toPaused = await b.client.sendMessage({ to: a.handle, content: { text: 'Are you there?' } })
      await messageItem(toPaused.message.id).waitFor()

      await page.getByRole('button', { name: 'Unpause' }).click()
      await page.locator('#pause-state', { hasText: 'Running normally' }).waitFor()
      const sent = await a.client.sendMessage({ to: b.handle, content: { text: 'Back online — booking now.' } })
      expect(sent.message.seq).toBeGreaterThan(0)
      await messageItem(sent.message.id).waitFor()
      await page.locator('#events li[data-action="agent.unpaused"]').first().waitFor()
      const actions = await page.locator('#events li').evaluateAll((els) => els.map((e) => e.getAttribute('data-action')))
      expect(actions.slice(0, 3)).toEqual(['agent.unpaused', 'agent.paused', 'agent.claimed'])
      expect(actions).toContain('agent.created')
      await shoot('timeline', (p) => p.evaluate("document.querySelector('.timeline').scrollIntoView({ block: 'end' })"))

      // "Load older": more than a page of events (50), the rest fetched with ?before=.
      const o = new OwnerClient(s, email)
      for (const x of await context.cookies()) o.cookies.set(x.name, x.value)
      for (let i = 0; i < 25; i++) {
        await o.call('POST', `/dashboard/agents/${a.handle}/pause`, { mode: i % 2 ? 'send' : 'full' })
        await o.call('POST', `/dashboard/agents/${a.handle}/unpause`)
      }
      await page.goto(`${s.url}/dashboard#/`)
      await page.getByRole('heading', { name: 'Your agents' }).waitFor()
      await page.locator(`#agent-list li[data-handle="${a.handle}"] .agent-link`).click()
      await page.getByRole('heading', { name: /Research assistant/ }).waitFor()
      await until(async () => (await page.locator('#events li').count()) === 50, 'the first page of events')
      expect(await page.locator('#events li[data-action="agent.created"]').count()).toBe(0)
      const older = page.waitForRequest((r) => r.url().includes(`/dashboard/agents/${a.handle}/events?before=`))
      await page.getByRole('button', { name: 'Load older activity' }).click()
      await older
      await page.locator('#events li[data-action="agent.created"]').waitFor()
      expect(await page.locator('#events li').count()).toBeGreaterThan(50)
      expect(await page.getByRole('button', { name: 'Load older activity' }).isHidden()).toBe(true)
    })

    // Dropping the page's socket needs the server's own context: in-process servers only.
    test.skipIf(backend !== 'embedded')('the socket comes back after a drop, with a fresh ticket, and catches up', async () => {
      await page.locator(`#conv-list a[data-conversation="${conversationId}"]`).click()
      await page.locator('#thread-title', { hasText: 'Travel planner' }).waitFor()
      const tickets: string[] = []
      page.on('request', (r) => r.url().endsWith('/dashboard/ws/ticket') && tickets.push(r.url()))
      for (const ws of [...s.running.ctx.dashboard.all()]) ws.close(1001, 'Server shutting down')
      await until(async () => (await liveText()) !== 'Live', 'the drop to show')
      // Sent while the page is disconnected: the catch-up after reconnecting brings it.
      const meanwhile = await b.client.sendMessage({ to: a.handle, content: { text: 'Sent while you were offline' } })
      await until(async () => (await liveText()) === 'Live', 'the reconnect', 15_000)
      expect(tickets.length).toBeGreaterThanOrEqual(1)
      await messageItem(meanwhile.message.id).waitFor()
      const live = await b.client.sendMessage({ to: a.handle, content: { text: 'And this one live again' } })
      await messageItem(live.message.id).waitFor()
    })

    test('approval before send in the page: "Every message" holds a send, it appears live, Approve sends it (seen arriving), Reject never does', async () => {
      await page.goto(`${s.url}/dashboard#/agent/${a.handle}`)
      await page.getByRole('heading', { name: /Research assistant/ }).waitFor()
      await page.locator(`#conv-list a[data-conversation="${conversationId}"]`).click()
      await page.locator('#thread-title', { hasText: 'Travel planner' }).waitFor()
      expect(await page.locator('#approvals-empty').isVisible()).toBe(true)
      await page.getByLabel('Approve its messages before they are sent').selectOption('all')
      await page.locator('#events li[data-action="agent.approval_mode_changed"]').first().waitFor()
      const bws = await new WsProbe(s.url).hello(b.apiKey, [])
      const text = 'Booked: Hotel Zentral, 12–14 March, €180 a night.'
      const held = await a.client.sendMessage({ to: b.handle, content: { text } })
      const approvalId = (held.message as any).approval_id as string
      expect((held.message as any).status).toBe('pending_approval')
      // Shown without a reload (the dashboard socket's approval.pending).
      const item = page.locator(`#approvals li[data-approval-id="${approvalId}"]`)
      await item.waitFor()
      expect(await item.locator('.text').textContent()).toBe(text)
      expect(await item.textContent()).toContain(`To @${b.handle}`)
      await shoot('approvals', (p) => p.evaluate("document.querySelector('.approvals').scrollIntoView({ block: 'start' })"))
      await Bun.sleep(200)
      expect(bws.ofType('message.new').some((f) => f.payload.content?.text === text)).toBe(false)

      await item.getByRole('button', { name: 'Approve' }).click()
      await page.locator('#notice', { hasText: 'Approved' }).waitFor()
      await until(async () => (await item.count()) === 0, 'the approved item to leave the list')
      await bws.until(() => bws.ofType('message.new').some((f) => f.payload.content?.text === text), 'the approved message at the recipient')
      const arrived = bws.ofType('message.new').find((f) => f.payload.content?.text === text)!
      // And it appears in the owner's open conversation, live.
      await messageItem(arrived.payload.id).locator('.text', { hasText: text }).waitFor()
      expect(await messageItem(arrived.payload.id).getAttribute('class')).toBe('msg own')

      const secret = 'Here is the company card number…'
      const held2 = await a.client.sendMessage({ to: b.handle, content: { text: secret } })
      const item2 = page.locator(`#approvals li[data-approval-id="${(held2.message as any).approval_id}"]`)
      await item2.waitFor()
      await item2.getByRole('button', { name: 'Reject' }).click()
      await page.locator('#notice', { hasText: 'Rejected' }).waitFor()
      await until(async () => (await item2.count()) === 0, 'the rejected item to leave the list')
      await page.locator('#events li[data-action="message.rejected"]').first().waitFor()
      await Bun.sleep(300)
      expect(bws.ofType('message.new').some((f) => f.payload.content?.text === secret)).toBe(false)
      expect(((await b.client.sync()) as any[]).some((r) => r.content?.text === secret)).toBe(false)
      expect(await page.locator('#messages li.msg .text', { hasText: secret }).count()).toBe(0)

      const modeSet = page.waitForResponse((r) => r.url().endsWith(`/dashboard/agents/${a.handle}/approval`) && r.request().method() === 'POST')
      await page.getByLabel('Approve its messages before they are sent').selectOption('none')
      expect((await modeSet).status()).toBe(200)
      expect((await a.client.sendMessage({ to: b.handle, content: { text: 'Sent freely again.' } })).message.seq).toBeGreaterThan(0)
      bws.close()
    })

    test('release in the page: the agent leaves the list', async () => {
      await page.goto(`${s.url}/dashboard#/agent/${c.handle}`)
      await page.getByRole('heading', { name: /Inbox triage/ }).waitFor()
      await page.getByRole('button', { name: 'Release agent…' }).click()
      await page.locator('#confirm[open]').waitFor()
      await page.locator('#confirm-ok').click()
      await page.getByRole('heading', { name: 'Your agents' }).waitFor()
      await page.locator('#notice', { hasText: `Released @${c.handle}.` }).waitFor()
      await until(async () => (await page.locator(`#agent-list li[data-handle="${c.handle}"]`).count()) === 0, 'c to leave the list')
      expect(await page.locator(`#agent-list li[data-handle="${a.handle}"]`).count()).toBe(1)
      const o = new OwnerClient(s, email)
      for (const x of await context.cookies()) o.cookies.set(x.name, x.value)
      expect((await o.call('GET', `/dashboard/agents/${c.handle}`)).status).toBe(404)
    })

    test('signed out everywhere from another browser: the socket closes 1008, the page stops and asks to sign in', async () => {
      const elsewhere = new OwnerClient(s, email)
      await clearOtpLog(s, email)
      await elsewhere.signIn()
      const r = await elsewhere.call('POST', '/dashboard/auth/logout/all')
      expect(r.json.sessions_revoked).toBe(2)
      await page.getByRole('heading', { name: 'Sign in' }).waitFor()
      await page.locator('#notice', { hasText: 'Your session ended' }).waitFor()
      expect(await liveText()).toBe('Not connected')
      // It stays stopped: no reconnect attempt with a fresh ticket.
      const tickets: string[] = []
      page.on('request', (x) => x.url().endsWith('/dashboard/ws/ticket') && tickets.push(x.url()))
      await Bun.sleep(2500)
      expect(tickets).toEqual([])
    })

    /** Sessions of the page's owner the server still honours. */
    async function liveSessions() {
      const rows = await s.admin.sql<{ n: number }>(
        sql`select count(*)::int as n from owner_sessions s join owners o on o.id = s.owner_id where o.email = ${email} and s.revoked_at is null and s.rotated_at is null`,
      )
      return Number(rows[0]!.n)
    }

    test('sign in again, then "Sign out" and "Sign out everywhere" in the page (both also after the access cookie expired)', async () => {
      await signInInPage()
      // An hour later the access cookie is gone; signing out must still end the session on the server.
      expect(await liveSessions()).toBe(1)
      await context.clearCookies({ name: 'ac_dashboard_session' })
      await page.getByRole('button', { name: 'Sign out', exact: true }).click()
      await page.locator('#notice', { hasText: 'You are signed out.' }).waitFor()
      expect(await context.cookies()).toEqual([])
      expect(await liveSessions()).toBe(0)
      await page.reload()
      await page.getByRole('heading', { name: 'Sign in' }).waitFor()
      await signInInPage()
      await context.clearCookies({ name: 'ac_dashboard_session' })
      await page.getByRole('button', { name: 'Sign out everywhere' }).click()
      await page.locator('#confirm-ok').click()
      await page.locator('#notice', { hasText: 'Signed out everywhere (1 session).' }).waitFor()
      expect(await context.cookies()).toEqual([])
      probe.close()
      expect(problems).toEqual([])
    })
  })
}
