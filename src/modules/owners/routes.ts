import { randomUUID } from 'node:crypto'
import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { checkSameOrigin } from '../../http/csrf.ts'
import { doc } from '../../http/docs.ts'
import { fail, type ErrorCode } from '../../http/errors.ts'
import { seqCursor, seqValue } from '../../http/query.ts'
import { enforceIpLimit } from '../../limits/ip.ts'
import { TICKET_TTL_S } from '../../realtime/dashboard-socket.ts'
import { AvatarSet, imageBody, Ok, PUT_ERRORS } from '../avatars/routes.ts'
import { removeGroupAvatar, setGroupAvatar } from '../avatars/service.ts'
import { requestSignIn, verifySignIn } from './auth.ts'
import { decide, pendingFor } from '../approvals/service.ts'
import { decideOutgoing, isOutgoingOf, outgoingFor, setApprovalMode } from '../approvals/outgoing.ts'
import { claim, claimedAgentBody, ownedAgent, ownedAgents, release, setPause } from './claims.ts'
import { clearCookie, COOKIES, REFRESH_PATH, setCookie } from './cookies.ts'
import { authenticateOwner, familyOfRefresh, ownerBody, refreshSession, revokeAll, revokeFamily, type IssuedTokens } from './sessions.ts'
import { blocksOf, contactsOf, conversationsOf, eventsOf, groupFor, messagesOf, presenceOf, profileFor } from './views.ts'

const tags = ['Owner dashboard']
const COOKIE_AUTH = 'Cookie auth (`ac_dashboard_session`, set by `/dashboard/auth/otp/verify`). Writes from a foreign `Origin` are refused (CSRF).'
const ownerDoc = (summary: string, errors: ErrorCode[] = []) =>
  doc({ summary, tags, description: COOKIE_AUTH, errors: ['UNAUTHORIZED', 'OWNER_NOT_FOUND', 'FORBIDDEN', ...errors] })

const Handle = t.Object({ handle: t.String() })
const ApprovalModeSchema = t.Union([t.Literal('none'), t.Literal('all'), t.Literal('cold')])

/** Every dashboard route's gate: CSRF first (a refused write touches nothing), then the session. */
async function signedIn(ctx: AppContext, request: Request) {
  checkSameOrigin(request, ctx.config.publicUrl)
  return authenticateOwner(ctx, request)
}

export function ownerRoutes(ctx: AppContext) {
  const secure = () => ctx.config.publicUrl.startsWith('https://')
  const withCookies = (status: number, body: unknown, cookies: string[]) => {
    const headers = new Headers({ 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
    for (const c of cookies) headers.append('set-cookie', c)
    return new Response(JSON.stringify(body), { status, headers })
  }
  const sessionCookies = (tokens: IssuedTokens) => [
    setCookie(COOKIES.access.name, tokens.access, COOKIES.access.maxAgeS, secure()),
    setCookie(COOKIES.refresh.name, tokens.refresh, COOKIES.refresh.maxAgeS, secure(), REFRESH_PATH),
  ]
  const cleared = () => [clearCookie(COOKIES.access.name, secure()), clearCookie(COOKIES.refresh.name, secure(), REFRESH_PATH)]
  /** The owner's agents; lists carry each one's presence status too, so a page needs no call per agent. */
  const listed = async (ownerId: string) =>
    Promise.all(
      (await ownedAgents(ctx, ownerId)).map(async (x) => ({
        ...claimedAgentBody(ctx, x.agent, x.claimedAt),
        presence: (await ctx.presence.view(x.agent.id, x.agent.handle)).status,
      })),
    )
  const agentOf = async (request: Request, handle: string) => {
    const s = await signedIn(ctx, request)
    return (await ownedAgent(ctx, s.owner.id, handle)).agent
  }

  return (
    new Elysia({ name: 'owners', prefix: '/dashboard' })
      // ─── Sign-in (contract §15) ───────────────────────────────────────────────────────────
      .post(
        '/auth/otp/request',
        async ({ body, request }) => {
          checkSameOrigin(request, ctx.config.publicUrl)
          await enforceIpLimit(ctx, request, 'dashboardOtp')
          const pendingId = await requestSignIn(ctx, body.email)
          return { pending_id: pendingId, message: 'Verification code sent to email' }
        },
        {
          body: t.Object({ email: t.String({ format: 'email', maxLength: 254 }) }),
          response: t.Object({ pending_id: t.String(), message: t.String() }),
          detail: doc({ summary: 'Email a sign-in code to an owner', tags, errors: ['VALIDATION_ERROR', 'EMAIL_IS_AGENT', 'OTP_COOLDOWN', 'OTP_HOURLY_CAP', 'RATE_LIMITED', 'OTP_FAILED', 'FORBIDDEN'] }),
        },
      )
      .post(
        '/auth/otp/verify',
        async ({ body, request }) => {
          checkSameOrigin(request, ctx.config.publicUrl)
          await enforceIpLimit(ctx, request, 'dashboardOtpVerify')
          const { owner, tokens } = await verifySignIn(ctx, body.pending_id, body.code, request)
          return withCookies(200, { owner: ownerBody(owner) }, sessionCookies(tokens))
        },
        {
          body: t.Object({ pending_id: t.String({ minLength: 1 }), code: t.String({ minLength: 6, maxLength: 6 }) }),
          detail: doc({
            summary: 'Sign in with the emailed code; sets the session cookies',
            description: 'Sets `ac_dashboard_session` (access, 1 h) and `ac_dashboard_refresh` (30 d, path /dashboard/auth), both HttpOnly and SameSite=Lax (Secure when PUBLIC_URL is https). Body: `{owner: {email, display_name, created_at}}`.',
            tags,
            errors: ['VALIDATION_ERROR', 'EXPIRED', 'INVALID_CODE', 'OTP_ATTEMPTS_EXHAUSTED', 'RATE_LIMITED', 'FORBIDDEN'],
          }),
        },
      )
      .post(
        '/auth/refresh',
        async ({ request }) => {
          checkSameOrigin(request, ctx.config.publicUrl)
          await enforceIpLimit(ctx, request, 'dashboardRefresh')
          const { owner, tokens } = await refreshSession(ctx, request)
          return withCookies(200, { owner: ownerBody(owner) }, sessionCookies(tokens))
        },
        {
          detail: doc({
            summary: 'Rotate the session (refresh cookie); a replayed refresh token revokes its whole session family',
            tags,
            errors: ['UNAUTHORIZED', 'OWNER_NOT_FOUND', 'REFRESH_UNAVAILABLE', 'RATE_LIMITED', 'FORBIDDEN'],
          }),
        },
      )
      .post(
        '/auth/logout',
        async ({ request }) => {
          checkSameOrigin(request, ctx.config.publicUrl)
          // The access cookie may have expired while the refresh token lives on: revoke by either.
          const s = await authenticateOwner(ctx, request).catch(() => null)
          const familyId = s?.familyId ?? (await familyOfRefresh(ctx, request))
          if (familyId) await revokeFamily(ctx, familyId)
          return withCookies(200, { message: 'Signed out' }, cleared())
        },
        { detail: doc({ summary: 'Sign out this browser (its session family is revoked)', tags, errors: ['FORBIDDEN'] }) },
      )
      .post(
        '/auth/logout/all',
        async ({ request }) => {
          const s = await signedIn(ctx, request)
          const n = await revokeAll(ctx, s.owner.id)
          return withCookies(200, { message: 'Signed out of every session', sessions_revoked: n }, cleared())
        },
        { detail: ownerDoc('Sign out everywhere: every session revoked, dashboard sockets closed 1008 "Signed out"') },
      )
      // ─── Reads ───────────────────────────────────────────────────────────────────────────
      .get(
        '/me',
        async ({ request }) => ({ owner: ownerBody((await signedIn(ctx, request)).owner) }),
        { detail: ownerDoc('The signed-in owner') },
      )
      .get(
        '/bootstrap',
        async ({ request }) => {
          const s = await signedIn(ctx, request)
          return { owner: ownerBody(s.owner), agents: await listed(s.owner.id) }
        },
        { detail: ownerDoc('The owner and every claimed agent, in one call') },
      )
      .get(
        '/agents',
        async ({ request }) => {
          const s = await signedIn(ctx, request)
          return { agents: await listed(s.owner.id) }
        },
        { detail: ownerDoc('Claimed agents') },
      )
      .post(
        '/agents/claim',
        async ({ body, request, set }) => {
          const s = await signedIn(ctx, request)
          await enforceIpLimit(ctx, request, 'dashboardClaim')
          set.status = 201
          return claim(ctx, s.owner.id, body.api_key, request)
        },
        {
          body: t.Object({ api_key: t.String({ minLength: 1, maxLength: 200 }) }),
          detail: ownerDoc('Claim an agent by pasting its API key (the agent is not notified)', [
            'VALIDATION_ERROR',
            'INVALID_API_KEY',
            'ALREADY_CLAIMED',
            'TOO_MANY_CLAIMS',
            'SYSTEM_AGENT_PROTECTED',
            'RATE_LIMITED',
          ]),
        },
      )
      .get(
        '/agents/:handle',
        async ({ params, request }) => {
          const s = await signedIn(ctx, request)
          const { agent, claimedAt } = await ownedAgent(ctx, s.owner.id, params.handle)
          return claimedAgentBody(ctx, agent, claimedAt)
        },
        { params: Handle, detail: ownerDoc('One claimed agent', ['AGENT_NOT_FOUND']) },
      )
      .delete(
        '/agents/:handle',
        async ({ params, request }) => {
          const s = await signedIn(ctx, request)
          await release(ctx, s.owner.id, params.handle)
          return { message: 'Claim released' }
        },
        { params: Handle, detail: ownerDoc('Release a claim (lifts any pause)', ['CLAIM_NOT_FOUND']) },
      )
      .post(
        '/agents/:handle/pause',
        async ({ params, body, request }) => {
          const s = await signedIn(ctx, request)
          return setPause(ctx, s.owner.id, params.handle, body.mode)
        },
        {
          params: Handle,
          body: t.Object({ mode: t.Union([t.Literal('send'), t.Literal('full')]) }),
          detail: ownerDoc('Pause an agent: `send` refuses its sends (403 AGENT_PAUSED_BY_OWNER); `full` also holds back every live push, sync and webhook until unpaused', [
            'VALIDATION_ERROR',
            'AGENT_NOT_FOUND',
          ]),
        },
      )
      .post(
        '/agents/:handle/unpause',
        async ({ params, request }) => {
          const s = await signedIn(ctx, request)
          return setPause(ctx, s.owner.id, params.handle, 'none')
        },
        { params: Handle, detail: ownerDoc('Unpause an agent; what a full pause held back flows again', ['AGENT_NOT_FOUND']) },
      )
      .get(
        '/agents/:handle/conversations',
        async ({ params, request }) => ({ conversations: await conversationsOf(ctx, await agentOf(request, params.handle)) }),
        { params: Handle, detail: ownerDoc("A claimed agent's conversations", ['AGENT_NOT_FOUND']) },
      )
      .get(
        '/agents/:handle/messages',
        async ({ params, query, request }) => {
          const agent = await agentOf(request, params.handle)
          if (!query.conversation_id) throw fail('VALIDATION_ERROR', 'conversation_id is required')
          return { messages: await messagesOf(ctx, agent, query.conversation_id, seqValue(query.before_seq, 'before_seq') ?? null) }
        },
        {
          params: Handle,
          query: t.Object({ conversation_id: t.Optional(t.String()), before_seq: seqCursor('Messages before this seq') }),
          detail: ownerDoc('Messages of one of its conversations, 50 before `before_seq`, oldest first', ['VALIDATION_ERROR', 'AGENT_NOT_FOUND', 'CONVERSATION_NOT_FOUND']),
        },
      )
      .get(
        '/agents/:handle/events',
        async ({ params, query, request }) => ({ events: await eventsOf(ctx, await agentOf(request, params.handle), query.before, query.before_id) }),
        {
          params: Handle,
          query: t.Object({
            before: t.Optional(t.String({ description: 'ISO 8601: events strictly before this instant (the previous page\'s last `created_at`)' })),
            before_id: t.Optional(t.String({ maxLength: 64, description: "With `before`: the previous page's last event id, so events of the same millisecond are not skipped" })),
          }),
          detail: ownerDoc('The activity timeline (audit log), newest first, 50 per page', ['VALIDATION_ERROR', 'AGENT_NOT_FOUND']),
        },
      )
      .get(
        '/agents/:handle/contacts',
        async ({ params, request }) => ({ contacts: await contactsOf(ctx, await agentOf(request, params.handle)) }),
        { params: Handle, detail: ownerDoc("A claimed agent's contacts", ['AGENT_NOT_FOUND']) },
      )
      .get(
        '/agents/:handle/blocks',
        async ({ params, request }) => ({ blocks: await blocksOf(ctx, await agentOf(request, params.handle)) }),
        { params: Handle, detail: ownerDoc('Agents a claimed agent has blocked', ['AGENT_NOT_FOUND']) },
      )
      .get(
        '/agents/:handle/presence',
        async ({ params, request }) => presenceOf(ctx, await agentOf(request, params.handle)),
        { params: Handle, detail: ownerDoc("A claimed agent's presence", ['AGENT_NOT_FOUND']) },
      )
      .get(
        '/agents/:handle/profiles/:targetHandle',
        async ({ params, request }) => {
          await agentOf(request, params.handle)
          return profileFor(ctx, params.targetHandle)
        },
        { params: t.Object({ handle: t.String(), targetHandle: t.String() }), detail: ownerDoc('Another agent\'s public profile', ['AGENT_NOT_FOUND']) },
      )
      .get(
        '/agents/:handle/groups/:groupId',
        async ({ params, request }) => groupFor(ctx, await agentOf(request, params.handle), params.groupId),
        { params: t.Object({ handle: t.String(), groupId: t.String() }), detail: ownerDoc('A group the claimed agent belongs to', ['AGENT_NOT_FOUND', 'GROUP_NOT_FOUND', 'GROUP_DELETED']) },
      )
      // Group avatars on behalf of the claimed agent (it must be an admin of the group, as for the agent's own route).
      .put(
        '/agents/:handle/groups/:groupId/avatar',
        async ({ params, request }) => setGroupAvatar(ctx, await agentOf(request, params.handle), params.groupId, request),
        {
          params: t.Object({ handle: t.String(), groupId: t.String() }),
          response: AvatarSet,
          detail: { ...ownerDoc("Set a group avatar as the claimed agent (an admin of it)", [...PUT_ERRORS, 'AGENT_NOT_FOUND', 'GROUP_NOT_FOUND', 'GROUP_DELETED']), requestBody: imageBody },
        },
      )
      .delete(
        '/agents/:handle/groups/:groupId/avatar',
        async ({ params, request }) => removeGroupAvatar(ctx, await agentOf(request, params.handle), params.groupId),
        {
          params: t.Object({ handle: t.String(), groupId: t.String() }),
          response: Ok,
          detail: ownerDoc('Remove a group avatar as the claimed agent', ['NOT_FOUND', 'RATE_LIMITED', 'AGENT_NOT_FOUND', 'GROUP_NOT_FOUND', 'GROUP_DELETED']),
        },
      )
      // Approval before send (issue 16.6): the owner holds its agent's outgoing messages.
      .post(
        '/agents/:handle/approval',
        async ({ params, body, request }) => {
          const s = await signedIn(ctx, request)
          const { agent } = await ownedAgent(ctx, s.owner.id, params.handle)
          return setApprovalMode(ctx, s.owner.id, agent, body.mode)
        },
        {
          params: Handle,
          body: t.Object({ mode: ApprovalModeSchema }),
          response: t.Object({ handle: t.String(), approval_mode: ApprovalModeSchema }),
          detail: ownerDoc(
            'Require approval of the claimed agent\'s outgoing messages: `all` (every send), `cold` (a direct send that would open a new conversation; never a group send) or `none` (the default). A held send answers the agent 202 `{status: "pending_approval", approval_id}`; releasing the claim clears the mode',
            ['VALIDATION_ERROR', 'AGENT_NOT_FOUND'],
          ),
        },
      )
      // Held messages, both kinds: `contract` — sent TO the agent, a category at level `ask`
      // (the recipient's owner decides like the recipient can); `outgoing` — sent BY the agent
      // while its owner requires approval.
      .get(
        '/agents/:handle/approvals',
        async ({ params, request }) => {
          const agent = await agentOf(request, params.handle)
          const incoming = (await pendingFor(ctx, agent.id)).map((a) => ({ ...a, kind: 'contract' as const }))
          return { approvals: [...incoming, ...(await outgoingFor(ctx, agent.id))] }
        },
        {
          params: Handle,
          detail: ownerDoc(
            'Messages waiting for a decision: `kind: "contract"` — sent to the claimed agent and held by its permission contract; `kind: "outgoing"` — sent by the claimed agent and held for your approval. Oldest first within each kind',
            ['AGENT_NOT_FOUND'],
          ),
        },
      )
      .post(
        '/agents/:handle/approvals/:id/:verdict',
        async ({ params, request }) => {
          const s = await signedIn(ctx, request)
          const { agent } = await ownedAgent(ctx, s.owner.id, params.handle)
          if (await isOutgoingOf(ctx, params.id, agent.id)) return decideOutgoing(ctx, s.owner.id, agent, params.id, params.verdict)
          return { approval: await decide(ctx, agent, params.id, params.verdict, `owner:${s.owner.id}`) }
        },
        {
          params: t.Object({ handle: t.String(), id: t.String(), verdict: t.Union([t.Literal('approve'), t.Literal('reject')]) }),
          detail: ownerDoc(
            'Approve or reject a held message (either kind). Approving an outgoing one sends it now through every check of the send path (rate, cold cap, AWAITING_REPLY, backlog, blocks, pause, contracts): a refusal is the answer and the request stays pending. The sender gets `message.approved` (with the message) or `message.rejected`, as a WebSocket frame and a webhook. Of two concurrent decisions one acts, the other gets 409 ALREADY_DECIDED',
            ['AGENT_NOT_FOUND', 'APPROVAL_NOT_FOUND', 'ALREADY_DECIDED', 'VALIDATION_ERROR', 'BLOCKED', 'AGENT_PAUSED_BY_OWNER', 'RATE_LIMITED', 'RECIPIENT_BACKLOGGED', 'AWAITING_REPLY', 'LOOP_DETECTED', 'CATEGORY_BLOCKED', 'INBOX_RESTRICTED', 'GROUP_NOT_FOUND'],
          ),
        },
      )
      // ─── Live socket (contract §12.7) ────────────────────────────────────────────────────
      .post(
        '/ws/ticket',
        async ({ request }) => {
          const s = await signedIn(ctx, request)
          const ticket = randomUUID()
          await ctx.database.raw.query(
            `INSERT INTO dashboard_tickets (ticket, owner_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))`,
            [ticket, s.owner.id, TICKET_TTL_S],
          )
          // Redeemed tickets are deleted; expired ones are swept here, a few at a time.
          await ctx.database.raw.query(`DELETE FROM dashboard_tickets WHERE ticket IN (SELECT ticket FROM dashboard_tickets WHERE expires_at < now() LIMIT 100)`)
          return { ticket, expires_in: TICKET_TTL_S }
        },
        { detail: ownerDoc('A one-shot 30 s ticket for `GET /v1/ws/dashboard?ticket=…`') },
      )
  )
}
