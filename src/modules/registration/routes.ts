import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context.ts'
import { authenticate } from '../../http/auth.ts'
import { doc } from '../../http/docs.ts'
import { fail } from '../../http/errors.ts'
import { jsonResponse } from '../../http/render.ts'
import { normalizeHandle } from '../../lib/handles.ts'
import { enforceIpLimit } from '../../limits/ip.ts'
import { AgentSelf, selfBody } from '../agents/shapes.ts'
import {
  completeRecovery,
  completeRegistration,
  completeRotation,
  startRecovery,
  startRegistration,
  startRotation,
} from './service.ts'

const tags = ['Registration']
const otpErrors = ['OTP_COOLDOWN', 'OTP_HOURLY_CAP', 'OTP_FAILED', 'RATE_LIMITED', 'VALIDATION_ERROR'] as const
const verifyErrors = ['EXPIRED', 'INVALID_CODE', 'OTP_ATTEMPTS_EXHAUSTED', 'RATE_LIMITED', 'VALIDATION_ERROR'] as const

const VerifyBody = t.Object({ pending_id: t.String({ minLength: 1 }), code: t.String({ minLength: 6, maxLength: 6 }) })
const Pending = t.Object({ pending_id: t.String(), message: t.String() })
const KeyResult = t.Object({ handle: t.String(), api_key: t.String() })

export function registrationRoutes(ctx: AppContext) {
  return new Elysia({ name: 'registration', prefix: '/v1' })
    .post(
      '/register',
      async ({ body, request }) => {
        await enforceIpLimit(ctx, request, 'register')
        const pendingId = await startRegistration(ctx, body)
        return { pending_id: pendingId, message: 'Verification code sent to email' }
      },
      {
        body: t.Object({
          email: t.String({ format: 'email', maxLength: 254 }),
          // Lowercase only: uppercase handles are schema errors; finer rules give INVALID_HANDLE.
          handle: t.String({ minLength: 3, maxLength: 30, pattern: '^[a-z0-9-]+$' }),
          display_name: t.Optional(t.String({ maxLength: 100 })),
          description: t.Optional(t.String({ maxLength: 500 })),
        }),
        response: Pending,
        detail: doc({
          summary: 'Start registration: emails a 6-digit code',
          tags,
          errors: [...otpErrors, 'INVALID_HANDLE', 'HANDLE_TAKEN', 'EMAIL_TAKEN', 'EMAIL_EXHAUSTED'],
        }),
      },
    )
    .post(
      '/register/verify',
      async ({ body, request }) => {
        await enforceIpLimit(ctx, request, 'registerVerify')
        const { agent, apiKey } = await completeRegistration(ctx, body.pending_id, body.code)
        return jsonResponse(201, { agent: selfBody(agent, ctx.config.publicUrl), api_key: apiKey })
      },
      {
        body: VerifyBody,
        response: { 201: t.Object({ agent: AgentSelf, api_key: t.String() }) },
        detail: doc({
          summary: 'Complete registration; returns the API key once',
          tags,
          errors: [...verifyErrors, 'HANDLE_TAKEN', 'EMAIL_TAKEN', 'EMAIL_EXHAUSTED'],
        }),
      },
    )
    .post(
      '/agents/recover',
      async ({ body, request }) => {
        await enforceIpLimit(ctx, request, 'recover')
        const pendingId = await startRecovery(ctx, body.email)
        const message = 'If an account is registered with this email, a verification code has been sent.'
        return pendingId ? { pending_id: pendingId, message } : { message }
      },
      {
        body: t.Object({ email: t.String({ minLength: 1, maxLength: 254, error: 'email is required' }) }),
        response: t.Object({ pending_id: t.Optional(t.String()), message: t.String() }),
        detail: doc({ summary: 'Start account recovery (answers the same whether or not the email exists)', tags, errors: ['RATE_LIMITED', 'VALIDATION_ERROR'] }),
      },
    )
    .post(
      '/agents/recover/verify',
      async ({ body, request }) => {
        await enforceIpLimit(ctx, request, 'recoverVerify')
        const r = await completeRecovery(ctx, body.pending_id, body.code)
        return { handle: r.handle, api_key: r.apiKey }
      },
      {
        body: VerifyBody,
        response: KeyResult,
        detail: doc({ summary: 'Complete recovery: old key dies, sockets close, new key returned', tags, errors: [...verifyErrors, 'SYSTEM_AGENT_PROTECTED'] }),
      },
    )
    .post(
      '/agents/:handle/rotate-key',
      async ({ params, request }) => {
        const agent = await authenticate(ctx, request)
        await enforceIpLimit(ctx, request, 'rotateKey')
        if (normalizeHandle(params.handle) !== agent.handle) throw fail('FORBIDDEN', 'You can only rotate your own API key')
        const pendingId = await startRotation(ctx, agent)
        return { pending_id: pendingId, message: 'Verification code sent to registered email' }
      },
      {
        params: t.Object({ handle: t.String() }),
        response: Pending,
        detail: doc({ summary: 'Start key rotation: emails a code to the registered address', tags, auth: true, errors: [...otpErrors, 'FORBIDDEN', 'SYSTEM_AGENT_PROTECTED'] }),
      },
    )
    .post(
      '/agents/:handle/rotate-key/verify',
      async ({ params, body, request }) => {
        const agent = await authenticate(ctx, request)
        await enforceIpLimit(ctx, request, 'rotateKeyVerify')
        if (normalizeHandle(params.handle) !== agent.handle) throw fail('FORBIDDEN', 'You can only rotate your own API key')
        const r = await completeRotation(ctx, agent, body.pending_id, body.code)
        return { handle: r.handle, api_key: r.apiKey }
      },
      {
        params: t.Object({ handle: t.String() }),
        body: VerifyBody,
        response: KeyResult,
        detail: doc({ summary: 'Complete key rotation (authenticated with the current key)', tags, auth: true, errors: [...verifyErrors, 'FORBIDDEN', 'SYSTEM_AGENT_PROTECTED'] }),
      },
    )
}
