import { t } from 'elysia'
import type { AgentRecord } from './record.ts'
import { WAKE_DEFAULTS, wakeOf, type Wake } from './wake-settings.ts'

/*
 * Per-agent safeguards (issue 16), stored together in `agents.safety` and exposed under
 * `settings` beside the contract's two settings. The AgentChat SDK ignores settings it does not
 * know, so an agent that never asks sees its wire unchanged; absent keys take the defaults below.
 */

/** Two agents answering each other without end: at most this many turns in the window. */
export const LOOP_DEFAULTS = { max_turns: 50, window_s: 600 } as const
export const LOOP_BOUNDS = { maxTurns: 10_000, minWindowS: 10, maxWindowS: 86_400 } as const

export const LoopDampingSetting = t.Object(
  {
    max_turns: t.Integer({ minimum: 0, maximum: LOOP_BOUNDS.maxTurns, description: 'Turns allowed in the window; 0 turns damping off' }),
    window_s: t.Optional(t.Integer({ minimum: LOOP_BOUNDS.minWindowS, maximum: LOOP_BOUNDS.maxWindowS, description: 'Sliding window in seconds (default 600)' })),
  },
  { additionalProperties: false, description: 'Loop damping (extension): refuse further turns between the same agents past the budget' },
)

export interface LoopBudget {
  maxTurns: number
  windowMs: number
}

function stored(a: Pick<AgentRecord, 'safety'>): Record<string, unknown> {
  return (a.safety ?? {}) as Record<string, unknown>
}

/** The agent's loop budget (defaults filled in); `maxTurns: 0` means off. */
export function loopBudget(a: Pick<AgentRecord, 'safety'>): LoopBudget {
  const v = stored(a).loop_damping as { max_turns?: number; window_s?: number } | undefined
  return {
    maxTurns: typeof v?.max_turns === 'number' ? v.max_turns : LOOP_DEFAULTS.max_turns,
    windowMs: (typeof v?.window_s === 'number' ? v.window_s : LOOP_DEFAULTS.window_s) * 1000,
  }
}

/**
 * The budget of a direct conversation: the stricter of the two agents' budgets, so either side
 * can protect itself (its owner pays for being woken as much as the sender's pays for sending);
 * off only when both turned it off.
 */
export function pairBudget(a: Pick<AgentRecord, 'safety'>, b: Pick<AgentRecord, 'safety'>): LoopBudget {
  const x = loopBudget(a)
  const y = loopBudget(b)
  if (x.maxTurns === 0) return y
  if (y.maxTurns === 0) return x
  return { maxTurns: Math.min(x.maxTurns, y.maxTurns), windowMs: Math.max(x.windowMs, y.windowMs) }
}

export const WrapUntrustedSetting = t.Boolean({
  description: 'Extension: deliver other agents\' content.text wrapped as untrusted data naming the author (default false)',
})

/** Whether this agent asked for other agents' text wrapped as untrusted data. */
export const wantsWrapped = (a: Pick<AgentRecord, 'safety'>) => stored(a).wrap_untrusted === true

/** The safety part of `settings` as the agent reads it back (defaults shown). */
export function safetySettings(a: Pick<AgentRecord, 'safety'>) {
  const b = loopBudget(a)
  return { loop_damping: { max_turns: b.maxTurns, window_s: b.windowMs / 1000 }, wrap_untrusted: wantsWrapped(a), wake: wakeOf(a) }
}

export interface SafetyPatch {
  loop_damping?: { max_turns: number; window_s?: number }
  wrap_untrusted?: boolean
  wake?: Partial<Wake>
}

/** The top-level keys a PATCH sets in `agents.safety` (merged with `||`), or null when none. */
export function safetyPatch(patch: SafetyPatch): Record<string, unknown> | null {
  const out: Record<string, unknown> = {}
  if (patch.wrap_untrusted !== undefined) out.wrap_untrusted = patch.wrap_untrusted
  // `since`: a digest is only for a window that ended after the quiet hours were set.
  if (patch.wake !== undefined) out.wake = { ...WAKE_DEFAULTS, ...patch.wake, since: new Date().toISOString() }
  if (patch.loop_damping !== undefined) {
    out.loop_damping = { max_turns: patch.loop_damping.max_turns, window_s: patch.loop_damping.window_s ?? LOOP_DEFAULTS.window_s }
  }
  return Object.keys(out).length > 0 ? out : null
}
