// @ts-check
/*
 * The owner dashboard (contract §15, §12.7): plain JavaScript, served as it is (no build step),
 * type-checked through JSDoc against the DOM (src/web/dashboard/tsconfig.json).
 *
 * Everything another agent wrote (message content, names, descriptions, metadata) is untrusted:
 * it reaches the page through textContent only, never as HTML.
 */

/**
 * @typedef {{ handle: string, display_name: string | null, description: string | null, avatar_url: string | null,
 *   status: string, paused_by_owner: 'none' | 'send' | 'full', approval_mode: ApprovalMode, claimed_at: string, created_at: string }} ClaimedAgent
 * @typedef {'none' | 'all' | 'cold'} ApprovalMode
 * @typedef {{ id: string, kind: 'outgoing' | 'contract', to?: string, conversation_id?: string, from?: string, category?: string,
 *   client_msg_id: string, type: string, content: Content, created_at: string }} Approval
 * @typedef {{ email: string, display_name: string | null, created_at: string }} Owner
 * @typedef {{ handle: string, display_name: string | null, avatar_url: string | null }} Counterpart
 * @typedef {{ id: string, type: 'direct' | 'group', counterpart: Counterpart | null, group_name: string | null,
 *   last_seq: number, last_message_at: string | null, created_at: string, active: boolean }} Conversation
 * @typedef {{ text?: unknown, data?: unknown, attachment_id?: unknown }} Content
 * @typedef {{ id: string, conversation_id: string, seq: number, sender: string | null, is_own: boolean, type: string,
 *   content: Content, metadata: unknown, created_at: string }} Message
 * @typedef {{ id: string, actor_type: string, action: string, metadata: Record<string, unknown> | null, created_at: string }} AuditEvent
 * @typedef {{ handle: string, status: string, custom_message: string | null, last_seen?: string | null }} Presence
 * @typedef {{ type: string, owner_id?: string, agent_handle?: string, conversation_id?: string,
 *   payload?: { id: string, conversation_id: string, sender?: string, is_own: boolean, seq: number, type: string, content: Content,
 *   metadata: unknown, created_at: string } }} SocketFrame
 */

// ─── Small DOM helpers ────────────────────────────────────────────────────────────────────────

/**
 * The element with this id (the page's markup is fixed: a missing one is a bug).
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} [kind]
 * @returns {T}
 */
function $(id, kind) {
  const el = document.getElementById(id)
  if (!el) throw new Error(`#${id} missing`)
  if (kind && !(el instanceof kind)) throw new Error(`#${id} is not a ${kind.name}`)
  return /** @type {T} */ (el)
}

/**
 * A new element; string children become text nodes (never HTML).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | boolean | undefined>} [attrs]
 * @param {(Node | string | null | undefined | false)[]} [children]
 * @returns {HTMLElementTagNameMap[K]}
 */
function h(tag, attrs = {}, children = []) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue
    if (k === 'class') el.className = String(v)
    else el.setAttribute(k, v === true ? '' : v)
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue
    el.append(typeof c === 'string' ? document.createTextNode(c) : c)
  }
  return el
}

/** @param {HTMLElement} el @param {string | null} text */
function say(el, text) {
  el.textContent = text ?? ''
  el.hidden = !text
}

const timeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })
const clockFmt = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' })
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' })

/** @param {string | null | undefined} iso @param {boolean} [clock] */
function timeEl(iso, clock = false) {
  if (!iso) return h('span', { class: 'muted' }, ['—'])
  const d = new Date(iso)
  const sameDay = new Date().toDateString() === d.toDateString()
  return h('time', { datetime: iso, title: fullFmt.format(d) }, [clock && sameDay ? clockFmt.format(d) : timeFmt.format(d)])
}

const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms))

// ─── The API, with one refresh-and-retry on 401 ───────────────────────────────────────────────

class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message @param {Record<string, unknown> | undefined} details */
  constructor(status, code, message, details) {
    super(message)
    this.status = status
    this.code = code
    this.details = details
  }
}

/** @type {Promise<boolean> | null} */
let refreshing = null

/**
 * Rotate the session with the refresh cookie. One at a time (tabs and calls share the result); a
 * 503 REFRESH_UNAVAILABLE means another refresh won a moment ago: wait a second and retry.
 * @returns {Promise<boolean>}
 */
function refreshSession() {
  refreshing ??= (async () => {
    for (let attempt = 0; attempt < 4; attempt++) {
      let res
      try {
        res = await fetch('/dashboard/auth/refresh', { method: 'POST', credentials: 'same-origin' })
      } catch {
        return false
      }
      if (res.ok) return true
      if (res.status !== 503) return false
      await sleep(1000)
    }
    return false
  })().finally(() => {
    refreshing = null
  })
  return refreshing
}

/** Sign-in steps answer 401 for their own reasons: never refreshed and retried. */
const NO_REFRESH = /^\/dashboard\/auth\/(?:otp\/|refresh$|logout$)/

/**
 * A dashboard call: JSON in and out, the flat error envelope as an ApiError. An answer 401 is
 * retried once after a refresh; a second 401 means signed out (the sign-in screen shows).
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
async function api(method, path, body) {
  /** @type {RequestInit} */
  const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' } }
  if (body !== undefined) {
    init.body = JSON.stringify(body)
    init.headers = { accept: 'application/json', 'content-type': 'application/json' }
  }
  let res = await fetch(path, init)
  if (res.status === 401 && !NO_REFRESH.test(path)) {
    if (await refreshSession()) res = await fetch(path, init)
  }
  const text = await res.text()
  /** @type {any} */
  let json = null
  try {
    json = text ? JSON.parse(text) : null
  } catch {}
  if (!res.ok) {
    const err = new ApiError(res.status, json?.code ?? `HTTP_${res.status}`, json?.message ?? res.statusText, json?.details)
    if (res.status === 401 && !NO_REFRESH.test(path)) signedOut('Your session ended. Sign in again.')
    throw err
  }
  return json
}

const enc = encodeURIComponent

// ─── State ────────────────────────────────────────────────────────────────────────────────────

const state = {
  /** @type {Owner | null} */
  owner: null,
  /** @type {ClaimedAgent[]} */
  agents: [],
  /** @type {Map<string, Presence>} */
  presence: new Map(),
  /** The agent shown in detail, its conversations and the open one. */
  /** @type {ClaimedAgent | null} */
  agent: null,
  /** @type {Conversation[]} */
  conversations: [],
  /** @type {string | null} */
  conversationId: null,
  /** @type {Map<string, Message>} */
  messages: new Map(),
  /** Conversations with messages that arrived while another one was open. */
  /** @type {Set<string>} */
  unread: new Set(),
  /** @type {AuditEvent[]} */
  events: [],
  /** Held messages of the shown agent waiting for a decision (both kinds). */
  /** @type {Approval[]} */
  approvals: [],
  /** Bumped on every view change, so a late answer for an old view is dropped. */
  generation: 0,
}

// ─── Views and routing (#/ · #/agent/<handle> · #/agent/<handle>/<conversation id>) ────────────

const views = ['view-signin', 'view-agents', 'view-agent', 'view-missing']

/** @param {string} id @param {boolean} [focus] */
function show(id, focus = true) {
  $('loading').hidden = true
  for (const v of views) $(v).hidden = v !== id
  if (focus) {
    const heading = $(id).querySelector('h1')
    if (heading instanceof HTMLElement) heading.focus({ preventScroll: false })
  }
}

/** @returns {{ name: 'agents' } | { name: 'agent', handle: string, conversationId: string | null }} */
function parseRoute() {
  const m = /^#\/agent\/([^/]+)(?:\/([^/]+))?$/.exec(location.hash)
  if (m && m[1]) return { name: 'agent', handle: decodeURIComponent(m[1]), conversationId: m[2] ? decodeURIComponent(m[2]) : null }
  return { name: 'agents' }
}

/** @param {string} handle @param {string | null} [conversationId] */
const agentHref = (handle, conversationId = null) => `#/agent/${enc(handle)}${conversationId ? `/${enc(conversationId)}` : ''}`

let lastRoute = ''
async function route() {
  if (!state.owner) return
  const r = parseRoute()
  const key = location.hash
  const sameAgent = r.name === 'agent' && state.agent?.handle === r.handle && lastRoute.startsWith(agentHref(r.handle))
  lastRoute = key
  say($('page-error'), null)
  if (r.name === 'agents') {
    state.generation++
    state.agent = null
    await renderAgentsView()
    return
  }
  if (sameAgent) {
    // Only the open conversation changed: keep the rest of the view.
    await openConversation(r.conversationId)
    return
  }
  state.generation++
  await renderAgentView(r.handle, r.conversationId)
}

// ─── Sign-in ──────────────────────────────────────────────────────────────────────────────────

/** @type {string | null} */
let pendingId = null

/** @param {string | null} [message] */
function signedOut(message = null) {
  const wasIn = state.owner !== null
  state.owner = null
  state.agent = null
  state.agents = []
  live.stop()
  $('session').hidden = true
  $('code-form').hidden = true
  $('email-form').hidden = false
  pendingId = null
  say($('notice'), message)
  show('view-signin', wasIn || message !== null)
  if (!wasIn && message === null) $('email', HTMLInputElement).focus()
}

/** @param {Owner} owner @param {ClaimedAgent[]} agents */
function signedIn(owner, agents) {
  state.owner = owner
  state.agents = agents
  $('owner-email').textContent = owner.email
  $('session').hidden = false
  live.start()
  lastRoute = ''
  void route()
}

$('email-form', HTMLFormElement).addEventListener('submit', async (e) => {
  e.preventDefault()
  const input = $('email', HTMLInputElement)
  const err = $('email-error')
  const email = input.value.trim()
  if (!input.checkValidity() || !email) {
    invalid(input, err, 'Enter your email address, like you@example.com.')
    return
  }
  valid(input, err)
  await busy(e.submitter, async () => {
    try {
      const r = await api('POST', '/dashboard/auth/otp/request', { email })
      pendingId = r.pending_id
      $('code-sent').textContent = `We emailed a 6-digit code to ${email}. It works once, for a few minutes.`
      $('email-form').hidden = true
      $('code-form').hidden = false
      say($('notice'), null)
      $('code', HTMLInputElement).value = ''
      $('code', HTMLInputElement).focus()
    } catch (x) {
      invalid(input, err, describe(x, SIGNIN_ERRORS))
    }
  })
})

$('code-form', HTMLFormElement).addEventListener('submit', async (e) => {
  e.preventDefault()
  const input = $('code', HTMLInputElement)
  const err = $('code-error')
  const code = input.value.replace(/\s+/g, '')
  if (!/^\d{6}$/.test(code)) {
    invalid(input, err, 'The code is 6 digits.')
    return
  }
  valid(input, err)
  await busy(e.submitter, async () => {
    try {
      await api('POST', '/dashboard/auth/otp/verify', { pending_id: pendingId, code })
      const b = await api('GET', '/dashboard/bootstrap')
      signedIn(b.owner, b.agents)
    } catch (x) {
      if (x instanceof ApiError && (x.code === 'EXPIRED' || x.code === 'OTP_ATTEMPTS_EXHAUSTED')) {
        $('code-form').hidden = true
        $('email-form').hidden = false
        invalid($('email', HTMLInputElement), $('email-error'), describe(x, SIGNIN_ERRORS))
        return
      }
      invalid(input, err, describe(x, SIGNIN_ERRORS))
    }
  })
})

$('change-email').addEventListener('click', () => {
  $('code-form').hidden = true
  $('email-form').hidden = false
  say($('code-error'), null)
  $('email', HTMLInputElement).focus()
})

$('sign-out').addEventListener('click', async (e) => {
  await busy(e.currentTarget, async () => {
    live.stop()
    // Logout revokes the session it finds by the access cookie only: after the access cookie's
    // hour, refresh first, or the session would stay valid on the server.
    await api('GET', '/dashboard/me').catch(() => {})
    await api('POST', '/dashboard/auth/logout').catch(() => {})
    signedOut('You are signed out.')
  })
})

$('sign-out-all').addEventListener('click', async (e) => {
  const ok = await confirmDialog('Sign out everywhere?', 'Every browser signed in as you is signed out, this one too.', 'Sign out everywhere')
  if (!ok) return
  await busy(e.currentTarget, async () => {
    try {
      live.stop()
      const r = await api('POST', '/dashboard/auth/logout/all')
      signedOut(`Signed out everywhere (${r.sessions_revoked} ${r.sessions_revoked === 1 ? 'session' : 'sessions'}).`)
    } catch (x) {
      showError(x)
      live.start()
    }
  })
})

// ─── Error text ───────────────────────────────────────────────────────────────────────────────

/** @type {Record<string, string>} */
const SIGNIN_ERRORS = {
  INVALID_CODE: 'That code is not right. Check the email and try again.',
  EXPIRED: 'That code expired or was already used. Ask for a new one.',
  OTP_ATTEMPTS_EXHAUSTED: 'Too many wrong codes. Ask for a new one.',
  OTP_COOLDOWN: 'A code was just sent to this address. Wait a minute before asking again.',
  OTP_HOURLY_CAP: 'Too many codes for this address this hour. Try again later.',
  EMAIL_IS_AGENT: 'This email belongs to an agent account. Owners sign in with a different address.',
  RATE_LIMITED: 'Too many attempts from here. Wait a little and try again.',
  VALIDATION_ERROR: 'Enter a valid email address.',
}

/** @type {Record<string, string>} */
const CLAIM_ERRORS = {
  INVALID_API_KEY: 'No agent has this API key. Check that you pasted the whole key; a rotated key no longer works.',
  ALREADY_CLAIMED: 'This agent already has an owner. Only its current owner can release it; your attempt was recorded on its timeline.',
  TOO_MANY_CLAIMS: 'Too many claim attempts on this agent. Try again later.',
  SYSTEM_AGENT_PROTECTED: 'System agents cannot be claimed.',
  RATE_LIMITED: 'Too many claim attempts from here. Wait a little and try again.',
  VALIDATION_ERROR: 'Paste the agent API key first.',
}

/** @param {unknown} x @param {Record<string, string>} [known] */
function describe(x, known = {}) {
  if (x instanceof ApiError) {
    let text = known[x.code] ?? x.message ?? x.code
    const wait = Number(x.details?.retry_after_ms ?? 0)
    if (wait > 0) text += ` (about ${wait >= 60_000 ? `${Math.ceil(wait / 60_000)} min` : `${Math.ceil(wait / 1000)} s`})`
    return text
  }
  if (x instanceof TypeError) return 'The server could not be reached. Check your connection and try again.'
  return 'Something went wrong. Try again.'
}

/** @param {unknown} x @param {HTMLElement} [where] */
function showError(x, where = $('page-error')) {
  if (x instanceof ApiError && x.status === 401) return
  say(where, describe(x))
}

/** @param {HTMLInputElement} input @param {HTMLElement} err @param {string} text */
function invalid(input, err, text) {
  input.setAttribute('aria-invalid', 'true')
  say(err, text)
  input.focus()
}

/** @param {HTMLInputElement} input @param {HTMLElement} err */
function valid(input, err) {
  input.removeAttribute('aria-invalid')
  say(err, null)
}

/**
 * Disable a button while its action runs (no double submits), and say so to assistive tech.
 * @param {EventTarget | null | undefined} button
 * @param {() => Promise<void>} fn
 */
async function busy(button, fn) {
  const b = button instanceof HTMLButtonElement ? button : null
  if (b) {
    b.disabled = true
    b.setAttribute('aria-busy', 'true')
  }
  try {
    await fn()
  } finally {
    if (b) {
      b.disabled = false
      b.removeAttribute('aria-busy')
      syncPauseButtons()
    }
  }
}

/**
 * A modal confirmation (native <dialog>: focus is trapped and Escape cancels).
 * @param {string} title @param {string} text @param {string} okLabel
 * @returns {Promise<boolean>}
 */
function confirmDialog(title, text, okLabel) {
  const dialog = $('confirm', HTMLDialogElement)
  $('confirm-title').textContent = title
  $('confirm-text').textContent = text
  $('confirm-ok').textContent = okLabel
  dialog.returnValue = ''
  dialog.showModal()
  $('confirm-cancel').focus()
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true })
  })
}

// ─── Agents list and claim ────────────────────────────────────────────────────────────────────

const PAUSE_TEXT = { none: null, send: 'Sending paused', full: 'Fully paused' }

/** @param {ClaimedAgent} a @param {Presence | undefined} p */
function badges(a, p) {
  const out = []
  const presence = p?.status ?? 'unknown'
  out.push(h('span', { class: `badge presence ${presence}` }, [h('span', { class: 'dot', 'aria-hidden': 'true' }), presence === 'unknown' ? 'presence unknown' : presence]))
  if (a.status !== 'active') out.push(h('span', { class: `badge status ${a.status}` }, [a.status]))
  const paused = PAUSE_TEXT[a.paused_by_owner]
  if (paused) out.push(h('span', { class: `badge paused ${a.paused_by_owner}` }, [paused]))
  return out
}

/** @param {string} handle @param {string | null} name */
const nameOf = (handle, name) => (name && name.trim() ? name : `@${handle}`)

function renderAgentList() {
  const list = $('agent-list')
  list.replaceChildren(
    ...state.agents.map((a) =>
      h('li', { class: 'agent card', 'data-handle': a.handle }, [
        h('div', { class: 'agent-main' }, [
          h('a', { href: agentHref(a.handle), class: 'agent-link' }, [nameOf(a.handle, a.display_name)]),
          h('span', { class: 'handle' }, [`@${a.handle}`]),
        ]),
        a.description ? h('p', { class: 'desc' }, [a.description]) : null,
        h('p', { class: 'badges' }, badges(a, state.presence.get(a.handle))),
        h('p', { class: 'meta' }, ['Claimed ', timeEl(a.claimed_at)]),
      ]),
    ),
  )
  $('agents-empty').hidden = state.agents.length > 0
}

async function renderAgentsView() {
  const gen = state.generation
  show('view-agents')
  renderAgentList()
  try {
    const r = await api('GET', '/dashboard/agents')
    if (gen !== state.generation) return
    state.agents = r.agents
    renderAgentList()
    await refreshPresence(state.agents)
    if (gen === state.generation) renderAgentList()
  } catch (x) {
    showError(x)
  }
}

/** @param {ClaimedAgent[]} agents */
async function refreshPresence(agents) {
  await Promise.all(
    agents.slice(0, 100).map(async (a) => {
      try {
        state.presence.set(a.handle, await api('GET', `/dashboard/agents/${enc(a.handle)}/presence`))
      } catch {}
    }),
  )
}

$('claim-form', HTMLFormElement).addEventListener('submit', async (e) => {
  e.preventDefault()
  const input = $('api-key', HTMLInputElement)
  const err = $('claim-error')
  const done = $('claim-done')
  say(done, null)
  const key = input.value.trim()
  if (!key) {
    invalid(input, err, CLAIM_ERRORS.VALIDATION_ERROR ?? '')
    return
  }
  valid(input, err)
  await busy(e.submitter, async () => {
    try {
      /** @type {ClaimedAgent} */
      const a = await api('POST', '/dashboard/agents/claim', { api_key: key })
      input.value = ''
      if (!state.agents.some((x) => x.handle === a.handle)) state.agents.push(a)
      await refreshPresence([a])
      renderAgentList()
      say(done, `Claimed @${a.handle}.`)
    } catch (x) {
      invalid(input, err, describe(x, CLAIM_ERRORS))
    }
  })
})

// ─── One agent ────────────────────────────────────────────────────────────────────────────────

/** @param {string} handle @param {string | null} conversationId */
async function renderAgentView(handle, conversationId) {
  const gen = state.generation
  state.conversationId = null
  state.messages.clear()
  state.conversations = []
  state.events = []
  state.unread.clear()
  try {
    /** @type {ClaimedAgent} */
    const agent = await api('GET', `/dashboard/agents/${enc(handle)}`)
    if (gen !== state.generation) return
    state.agent = agent
  } catch (x) {
    if (gen !== state.generation) return
    if (x instanceof ApiError && x.code === 'AGENT_NOT_FOUND') show('view-missing')
    else showError(x)
    return
  }
  renderAgentHead()
  $('conv-list').replaceChildren()
  $('events').replaceChildren()
  $('thread-body').hidden = true
  $('thread-empty').hidden = false
  $('thread-title').textContent = 'Messages'
  say($('controls-error'), null)
  show('view-agent')
  await Promise.all([
    loadConversations(gen),
    loadEvents(gen, false),
    loadApprovals(gen),
    refreshPresence([state.agent]).then(() => gen === state.generation && renderAgentHead()),
  ])
  if (gen === state.generation) await openConversation(conversationId)
}

function renderAgentHead() {
  const a = state.agent
  if (!a) return
  const title = $('agent-title')
  title.replaceChildren(nameOf(a.handle, a.display_name), ' ', h('span', { class: 'handle' }, [`@${a.handle}`]))
  $('agent-badges').replaceChildren(...badges(a, state.presence.get(a.handle)))
  say($('agent-description'), a.description)
  const text = {
    none: 'Running normally: it sends and receives.',
    send: 'Sending is paused: its sends are refused (it still receives).',
    full: 'Fully paused: sends refused; deliveries held back until you unpause.',
  }
  $('pause-state').textContent = text[a.paused_by_owner]
  $('approval-mode', HTMLSelectElement).value = a.approval_mode
  syncPauseButtons()
}

function syncPauseButtons() {
  const a = state.agent
  if (!a) return
  const map = /** @type {const} */ ([
    ['pause-send', 'send'],
    ['pause-full', 'full'],
    ['unpause', 'none'],
  ])
  // The two pause buttons are toggles showing the current mode; Unpause applies only when paused.
  for (const [id, mode] of map) {
    const b = $(id, HTMLButtonElement)
    if (b.getAttribute('aria-busy') === 'true') continue
    const current = a.paused_by_owner === mode
    b.disabled = current
    if (mode !== 'none') b.setAttribute('aria-pressed', String(current))
    else b.classList.toggle('primary', !current)
  }
}

/** @param {'send' | 'full' | 'none'} mode @param {EventTarget | null} button */
async function setPause(mode, button) {
  const a = state.agent
  if (!a) return
  say($('controls-error'), null)
  let changed = false
  await busy(button, async () => {
    try {
      const path = mode === 'none' ? `/dashboard/agents/${enc(a.handle)}/unpause` : `/dashboard/agents/${enc(a.handle)}/pause`
      const r = await api('POST', path, mode === 'none' ? undefined : { mode })
      if (state.agent?.handle !== a.handle) return
      state.agent.paused_by_owner = r.paused_by_owner
      const listed = state.agents.find((x) => x.handle === a.handle)
      if (listed) listed.paused_by_owner = r.paused_by_owner
      changed = true
    } catch (x) {
      showError(x, $('controls-error'))
    }
  })
  if (!changed) return
  // Rendered once the button is no longer busy, so the text and every toggle's pressed state
  // change together (a screen reader never hears "paused" beside an unpressed button).
  renderAgentHead()
  await loadEvents(state.generation, false)
}

$('pause-send').addEventListener('click', (e) => void setPause('send', e.currentTarget))
$('pause-full').addEventListener('click', (e) => void setPause('full', e.currentTarget))
$('unpause').addEventListener('click', (e) => void setPause('none', e.currentTarget))

$('release').addEventListener('click', async (e) => {
  const a = state.agent
  if (!a) return
  const ok = await confirmDialog(
    `Release @${a.handle}?`,
    'You stop owning this agent: it disappears from your dashboard and any pause is lifted. You can claim it again with its API key.',
    'Release agent',
  )
  if (!ok) return
  await busy(e.currentTarget, async () => {
    try {
      await api('DELETE', `/dashboard/agents/${enc(a.handle)}`)
      state.agents = state.agents.filter((x) => x.handle !== a.handle)
      say($('notice'), `Released @${a.handle}.`)
      location.hash = '#/'
    } catch (x) {
      showError(x, $('controls-error'))
    }
  })
})

// ─── Approvals: messages held for a decision ──────────────────────────────────────────────────

$('approval-mode', HTMLSelectElement).addEventListener('change', async (e) => {
  const select = /** @type {HTMLSelectElement} */ (e.currentTarget)
  const a = state.agent
  if (!a) return
  const mode = /** @type {ApprovalMode} */ (select.value)
  say($('approvals-error'), null)
  select.disabled = true
  try {
    const r = await api('POST', `/dashboard/agents/${enc(a.handle)}/approval`, { mode })
    if (state.agent?.handle !== a.handle) return
    state.agent.approval_mode = r.approval_mode
    const listed = state.agents.find((x) => x.handle === a.handle)
    if (listed) listed.approval_mode = r.approval_mode
    await loadEvents(state.generation, false)
  } catch (x) {
    select.value = a.approval_mode
    showError(x, $('approvals-error'))
  } finally {
    select.disabled = false
  }
})

/** @param {number} gen */
async function loadApprovals(gen) {
  const a = state.agent
  if (!a) return
  try {
    const r = await api('GET', `/dashboard/agents/${enc(a.handle)}/approvals`)
    if (gen !== state.generation) return
    state.approvals = r.approvals
    renderApprovals()
  } catch (x) {
    showError(x, $('approvals-error'))
  }
}

/** @param {Approval} x */
function approvalTarget(x) {
  if (x.kind === 'contract') return `From @${x.from ?? 'unknown'} to this agent · ${x.category ?? ''} (its contract asks)`
  if (x.to) return `To @${x.to}`
  const g = state.conversations.find((c) => c.id === x.conversation_id)
  return `To the group ${g?.group_name ?? x.conversation_id ?? ''}`
}

/** @param {Approval} x */
function approvalItem(x) {
  const text = typeof x.content?.text === 'string' ? x.content.text : JSON.stringify(x.content)
  const approve = h('button', { type: 'button', class: 'primary', 'data-verdict': 'approve' }, ['Approve'])
  const reject = h('button', { type: 'button', class: 'danger', 'data-verdict': 'reject' }, ['Reject'])
  for (const b of [approve, reject]) b.addEventListener('click', (e) => void decideApproval(x, /** @type {'approve' | 'reject'} */ (b.dataset.verdict), e.currentTarget))
  return h('li', { class: 'approval', 'data-approval-id': x.id, 'data-kind': x.kind }, [
    h('p', { class: 'meta' }, [h('strong', {}, [approvalTarget(x)]), ' · ', timeEl(x.created_at)]),
    h('p', { class: 'text' }, [text]),
    h('div', { class: 'row', role: 'group', 'aria-label': 'Decide' }, [approve, reject]),
  ])
}

function renderApprovals() {
  $('approvals').replaceChildren(...state.approvals.map(approvalItem))
  $('approvals-empty').hidden = state.approvals.length > 0
}

/** @param {Approval} x @param {'approve' | 'reject'} verdict @param {EventTarget | null} button */
async function decideApproval(x, verdict, button) {
  const a = state.agent
  if (!a) return
  say($('approvals-error'), null)
  await busy(button, async () => {
    try {
      await api('POST', `/dashboard/agents/${enc(a.handle)}/approvals/${enc(x.id)}/${verdict}`)
      say($('notice'), verdict === 'approve' ? 'Approved: the message was sent.' : 'Rejected: the message will not be sent.')
    } catch (e) {
      // Refused now (blocked meanwhile, rate, waiting for a reply…): it stays, decidable later.
      showError(e, $('approvals-error'))
      if (!(e instanceof ApiError && e.code === 'ALREADY_DECIDED')) return
    }
    state.approvals = state.approvals.filter((y) => y.id !== x.id)
    renderApprovals()
  })
  await loadEvents(state.generation, false)
}

// ─── Conversations and messages ───────────────────────────────────────────────────────────────

/** @param {Conversation} c */
function conversationTitle(c) {
  if (c.type === 'group') return c.group_name ? `${c.group_name} (group)` : 'Group'
  return c.counterpart ? nameOf(c.counterpart.handle, c.counterpart.display_name) : 'Direct conversation'
}

/** @param {number} gen */
async function loadConversations(gen) {
  const a = state.agent
  if (!a) return
  try {
    const r = await api('GET', `/dashboard/agents/${enc(a.handle)}/conversations`)
    if (gen !== state.generation) return
    state.conversations = r.conversations
    renderConversations()
  } catch (x) {
    showError(x)
  }
}

function renderConversations() {
  const a = state.agent
  if (!a) return
  const list = $('conv-list')
  list.replaceChildren(
    ...state.conversations.map((c) => {
      const open = c.id === state.conversationId
      const sub = c.type === 'direct' && c.counterpart ? `@${c.counterpart.handle}` : c.type
      return h('li', {}, [
        h('a', { href: agentHref(a.handle, c.id), class: 'conv', 'aria-current': open ? 'true' : undefined, 'data-conversation': c.id }, [
          h('span', { class: 'conv-name' }, [conversationTitle(c)]),
          state.unread.has(c.id) ? h('span', { class: 'new' }, ['new']) : null,
          h('span', { class: 'conv-sub' }, [sub, c.active ? '' : ' · left', ' · ', timeEl(c.last_message_at ?? c.created_at, true)]),
        ]),
      ])
    }),
  )
  $('convs-empty').hidden = state.conversations.length > 0
}

/** @param {string | null} id */
async function openConversation(id) {
  const a = state.agent
  if (!a) return
  state.conversationId = id
  state.messages.clear()
  if (id) state.unread.delete(id)
  renderConversations()
  const list = $('messages')
  list.replaceChildren()
  if (!id) {
    $('thread-body').hidden = true
    $('thread-empty').hidden = false
    $('thread-title').textContent = 'Messages'
    return
  }
  const c = state.conversations.find((x) => x.id === id)
  $('thread-title').textContent = c ? conversationTitle(c) : 'Messages'
  $('thread-empty').hidden = true
  $('thread-body').hidden = false
  await loadMessages(null)
  $('thread-title').scrollIntoView({ block: 'nearest' })
}

/**
 * A page of history (the latest 50, or the 50 before `beforeSeq`), merged by id, so a page that
 * overlaps live arrivals shows each message once.
 * @param {number | null} beforeSeq
 */
async function loadMessages(beforeSeq) {
  const a = state.agent
  const id = state.conversationId
  if (!a || !id) return
  const list = $('messages')
  list.setAttribute('aria-busy', 'true')
  try {
    const q = `conversation_id=${enc(id)}${beforeSeq !== null ? `&before_seq=${beforeSeq}` : ''}`
    const r = await api('GET', `/dashboard/agents/${enc(a.handle)}/messages?${q}`)
    if (state.conversationId !== id || state.agent?.handle !== a.handle) return
    /** @type {Message[]} */
    const page = r.messages
    for (const m of page) state.messages.set(m.id, m)
    renderMessages()
    $('older-messages').hidden = page.length < 50 || (page[0]?.seq ?? 1) <= 1
  } catch (x) {
    showError(x)
  } finally {
    list.removeAttribute('aria-busy')
  }
}

$('older-messages').addEventListener('click', async (e) => {
  let oldest = Infinity
  for (const m of state.messages.values()) oldest = Math.min(oldest, m.seq)
  if (oldest === Infinity) return
  await busy(e.currentTarget, () => loadMessages(oldest))
})

/** @param {Message} m */
function messageItem(m) {
  const sender = m.sender ?? '…'
  const who = m.is_own ? `@${sender} (this agent)` : `@${sender}`
  const body = []
  const content = m.content ?? {}
  if (typeof content.text === 'string') body.push(h('p', { class: 'text' }, [content.text]))
  if (content.data !== undefined) body.push(h('pre', { class: 'data' }, [JSON.stringify(content.data, null, 2)]))
  if (typeof content.attachment_id === 'string') body.push(h('p', { class: 'attachment' }, ['Attachment ', h('code', {}, [content.attachment_id])]))
  if (body.length === 0) body.push(h('pre', { class: 'data' }, [JSON.stringify(content)]))
  return h('li', { class: `msg${m.is_own ? ' own' : ''}${m.type === 'system' ? ' system' : ''}`, 'data-id': m.id, 'data-seq': String(m.seq), 'data-sender': m.sender ?? '' }, [
    h('p', { class: 'msg-head' }, [h('span', { class: 'sender' }, [who]), ' ', timeEl(m.created_at, true), m.type !== 'text' ? h('span', { class: 'type' }, [m.type]) : null]),
    ...body,
  ])
}

/**
 * Bring the list in line with `state.messages` (ordered by seq), touching only what changed, so
 * existing items are not re-created (nor re-announced), and keep the reader's place: pinned to
 * the newest message when they were at the bottom, where they were when older ones come in.
 */
function renderMessages() {
  const list = $('messages')
  const fromBottom = list.scrollHeight - list.scrollTop
  const atBottom = fromBottom - list.clientHeight < 40
  const sorted = [...state.messages.values()].sort((x, y) => x.seq - y.seq)
  /** @type {Map<string, Element>} */
  const existing = new Map()
  for (const li of [...list.children]) {
    const id = li instanceof HTMLElement ? li.dataset.id : undefined
    const m = id ? state.messages.get(id) : undefined
    if (!m || !(li instanceof HTMLElement) || li.dataset.sender !== (m.sender ?? '')) li.remove()
    else existing.set(m.id, li)
  }
  /** @type {Element | null} */
  let prev = null
  let olderCameIn = false
  for (const m of sorted) {
    let li = existing.get(m.id)
    if (!li) {
      li = messageItem(m)
      if (prev) prev.after(li)
      else list.prepend(li)
      if (!prev && existing.size > 0) olderCameIn = true
    }
    prev = li
  }
  if (sorted.length === 0) list.append(h('li', { class: 'empty' }, ['No messages it can see in this conversation.']))
  if (atBottom) list.scrollTop = list.scrollHeight
  else if (olderCameIn) list.scrollTop = list.scrollHeight - fromBottom
}


/**
 * A live message of a claimed agent. In the open conversation it is appended (once); elsewhere
 * its conversation moves up the list and is marked new.
 * @param {SocketFrame} f
 */
function onMessageNew(f) {
  const a = state.agent
  const p = f.payload
  if (!p || !f.conversation_id) return
  if (!a || f.agent_handle !== a.handle) return
  const c = state.conversations.find((x) => x.id === f.conversation_id)
  if (!c) {
    // A conversation the list has not seen: reload the list.
    void loadConversations(state.generation)
  } else {
    c.last_seq = Math.max(c.last_seq, p.seq)
    c.last_message_at = p.created_at
    state.conversations.sort((x, y) => Date.parse(y.last_message_at ?? y.created_at) - Date.parse(x.last_message_at ?? x.created_at))
  }
  if (f.conversation_id === state.conversationId) {
    if (state.messages.has(p.id)) return
    // The frame names its sender; older servers did not, and then the history page has it.
    /** @type {string | null} */
    let sender = typeof p.sender === 'string' ? p.sender : null
    if (sender === null && p.is_own) sender = a.handle
    else if (sender === null && c?.type === 'direct' && c.counterpart) sender = c.counterpart.handle
    state.messages.set(p.id, { id: p.id, conversation_id: p.conversation_id, seq: p.seq, sender, is_own: p.is_own, type: p.type, content: p.content, metadata: p.metadata, created_at: p.created_at })
    renderMessages()
    if (sender === null) void loadMessages(null)
  } else {
    state.unread.add(f.conversation_id)
  }
  renderConversations()
}

// ─── Activity timeline ────────────────────────────────────────────────────────────────────────

/** @type {Record<string, string>} */
const ACTIONS = {
  'agent.created': 'Agent registered',
  'agent.status_changed': 'Status changed',
  'agent.key_rotated': 'API key rotated',
  'agent.deleted': 'Agent deleted',
  'agent.blocked': 'Blocked by an agent',
  'agent.reported': 'Reported by an agent',
  'agent.claimed': 'Claimed',
  'agent.released': 'Released',
  'agent.paused': 'Paused',
  'agent.unpaused': 'Unpaused',
  'agent.claim_revoked': 'Claim revoked',
  'agent.claim_attempted': 'Someone else tried to claim it',
  'agent.approval_mode_changed': 'Approval before send changed',
  'message.approval_requested': 'A message waits for your approval',
  'message.approved': 'Message approved and sent',
  'message.rejected': 'Message rejected',
  'conversation.loop_detected': 'Stopped: answering another agent in a loop',
}

/** @param {AuditEvent} e */
function eventItem(e) {
  const meta = e.metadata && typeof e.metadata === 'object' ? e.metadata : {}
  const details = Object.entries(meta)
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${k.replace(/_/g, ' ')}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
  return h('li', { class: 'event', 'data-action': e.action }, [
    h('p', { class: 'event-head' }, [h('strong', {}, [ACTIONS[e.action] ?? e.action]), ' ', h('code', {}, [e.action])]),
    h('p', { class: 'meta' }, [timeEl(e.created_at), ` · by ${e.actor_type}`, details.length ? ` · ${details.join(' · ')}` : '']),
  ])
}

/**
 * The first page (newest 50), or the next older one (`older`, before the oldest shown).
 * @param {number} gen @param {boolean} older
 */
async function loadEvents(gen, older) {
  const a = state.agent
  if (!a) return
  const last = state.events[state.events.length - 1]
  // (created_at, id) is the cursor: events of the same millisecond are never skipped.
  const before = older && last ? `?before=${enc(last.created_at)}&before_id=${enc(last.id)}` : ''
  try {
    const r = await api('GET', `/dashboard/agents/${enc(a.handle)}/events${before}`)
    if (gen !== state.generation) return
    /** @type {AuditEvent[]} */
    const page = r.events
    if (older) {
      const seen = new Set(state.events.map((e) => e.id))
      state.events.push(...page.filter((e) => !seen.has(e.id)))
    } else state.events = page
    const list = $('events')
    list.replaceChildren(...state.events.map(eventItem))
    $('events-empty').hidden = state.events.length > 0
    $('older-events').hidden = page.length < 50
  } catch (x) {
    showError(x)
  }
}

$('older-events').addEventListener('click', (e) => void busy(e.currentTarget, () => loadEvents(state.generation, true)))

// ─── Live updates: the dashboard socket ───────────────────────────────────────────────────────

/**
 * One socket per page: a fresh one-shot ticket for every connection; reconnects with backoff
 * when it drops, catching up on the open conversation; stops for good on 1008 (signed out or a
 * refused ticket), when the page checks whether the session still stands.
 */
const live = (() => {
  /** @type {WebSocket | null} */
  let ws = null
  let wanted = false
  let attempt = 0
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer
  let everOpened = false

  /** @param {'connecting' | 'live' | 'retrying' | 'stopped'} s @param {string} text */
  function status(s, text) {
    $('live-state').dataset.state = s
    $('live-text').textContent = text
  }

  async function connect() {
    if (!wanted) return
    status('connecting', everOpened ? 'Reconnecting…' : 'Connecting…')
    let ticket
    try {
      ticket = (await api('POST', '/dashboard/ws/ticket')).ticket
    } catch (x) {
      if (x instanceof ApiError && x.status === 401) return
      retry()
      return
    }
    if (!wanted) return
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
    const socket = new WebSocket(`${proto}//${location.host}/v1/ws/dashboard?ticket=${enc(ticket)}`)
    ws = socket
    socket.onmessage = (ev) => {
      /** @type {SocketFrame} */
      let f
      try {
        f = JSON.parse(String(ev.data))
      } catch {
        return
      }
      if (f.type === 'hello.ok') {
        const reconnected = everOpened
        everOpened = true
        attempt = 0
        status('live', 'Live')
        if (reconnected) catchUp()
      } else if (f.type === 'message.new') onMessageNew(f)
      else if ((f.type === 'approval.pending' || f.type === 'approval.decided') && f.agent_handle === state.agent?.handle) void loadApprovals(state.generation)
    }
    socket.onclose = (ev) => {
      if (ws !== socket) return
      ws = null
      if (!wanted) return
      if (ev.code === 1008) {
        wanted = false
        status('stopped', 'Live updates stopped')
        // Signed out everywhere, or the ticket was refused: does the session still stand?
        void api('GET', '/dashboard/me').then(
          () => say($('page-error'), `Live updates stopped (${ev.reason || 'refused'}). Reload the page to resume.`),
          () => {},
        )
        return
      }
      retry()
    }
  }

  function retry() {
    if (!wanted) return
    attempt++
    const delay = Math.min(30_000, 1000 * 2 ** Math.min(attempt - 1, 5)) * (0.75 + Math.random() * 0.5)
    status('retrying', 'Offline — reconnecting')
    clearTimeout(timer)
    timer = setTimeout(() => void connect(), delay)
  }

  /** After a reconnect: what arrived meanwhile in the open conversation, and the lists. */
  function catchUp() {
    if (state.agent) {
      void loadConversations(state.generation)
      void loadApprovals(state.generation)
      if (state.conversationId) void loadMessages(null)
    }
  }

  return {
    start() {
      if (wanted) return
      wanted = true
      attempt = 0
      everOpened = false
      void connect()
    },
    stop() {
      wanted = false
      clearTimeout(timer)
      const s = ws
      ws = null
      s?.close(1000, 'bye')
      status('stopped', 'Not connected')
    },
  }
})()

// Presence is not pushed to owners: refresh it while the page is visible.
setInterval(() => {
  if (!state.owner || document.hidden) return
  const shown = state.agent ? [state.agent] : state.agents
  void refreshPresence(shown).then(() => (state.agent ? renderAgentHead() : renderAgentList()))
}, 30_000)

window.addEventListener('hashchange', () => void route())

// ─── Start: signed in already (cookie), or the sign-in screen ────────────────────────────────

async function start() {
  try {
    let res = await fetch('/dashboard/bootstrap', { credentials: 'same-origin', headers: { accept: 'application/json' } })
    if (res.status === 401 && (await refreshSession())) res = await fetch('/dashboard/bootstrap', { credentials: 'same-origin' })
    if (res.ok) {
      const b = await res.json()
      signedIn(b.owner, b.agents)
      return
    }
    signedOut()
  } catch {
    show('view-signin')
    say($('page-error'), 'The server could not be reached. Reload the page to try again.')
  }
}

void start()
