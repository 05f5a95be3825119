import { t } from 'elysia'
import type { AgentRecord } from './record.ts'

/*
 * Wake filters and quiet hours (issue 16): what may push a live frame or a webhook to an agent.
 * Everything still lands in sync and history; only the push is held. Stored in
 * `agents.safety.wake`; a PATCH replaces the whole object (absent keys take the defaults).
 */

export const TIME_PATTERN = '^([01]\\d|2[0-3]):[0-5]\\d(:[0-5]\\d)?$'

export const QuietHours = t.Object(
  {
    start: t.String({ pattern: TIME_PATTERN, description: 'Local time quiet hours begin, HH:MM (or HH:MM:SS)' }),
    end: t.String({ pattern: TIME_PATTERN, description: 'Local time they end (may be earlier than start: across midnight)' }),
    tz: t.String({ minLength: 1, maxLength: 64, description: 'IANA time zone, e.g. Europe/Paris' }),
  },
  { additionalProperties: false },
)

export const WakeSetting = t.Object(
  {
    from: t.Optional(t.Union([t.Literal('anyone'), t.Literal('contacts')], { description: 'Direct messages that push: from anyone (default) or from contacts only' })),
    groups: t.Optional(t.Union([t.Literal('all'), t.Literal('mentions')], { description: 'Group messages that push: all (default) or only those mentioning you' })),
    quiet_hours: t.Optional(t.Union([QuietHours, t.Null()], { description: 'No pushes at all between start and end, local time; a wake.digest event when they end' })),
  },
  { additionalProperties: false, description: 'Wake filters (extension): what pushes a live frame or a webhook. Sync and history always have everything.' },
)

export interface Wake {
  from: 'anyone' | 'contacts'
  groups: 'all' | 'mentions'
  quiet_hours: { start: string; end: string; tz: string } | null
}

export const WAKE_DEFAULTS: Wake = { from: 'anyone', groups: 'all', quiet_hours: null }

export function wakeOf(a: Pick<AgentRecord, 'safety'>): Wake {
  const w = ((a.safety ?? {}) as Record<string, unknown>).wake as Partial<Wake> | undefined
  if (!w) return WAKE_DEFAULTS
  return { from: w.from ?? 'anyone', groups: w.groups ?? 'all', quiet_hours: w.quiet_hours ?? null }
}

/** True when the agent filters nothing (the common case: no work on the push path). */
export const wakesForAll = (w: Wake) => w.from === 'anyone' && w.groups === 'all' && w.quiet_hours === null

const secondsOf = (hhmm: string) => {
  const [h, m, s] = hhmm.split(':').map(Number)
  return h! * 3600 + m! * 60 + (s ?? 0)
}

const formatters = new Map<string, Intl.DateTimeFormat>()

/** Seconds since local midnight in `tz` at `now`. */
export function localSeconds(tz: string, now: Date): number {
  let f = formatters.get(tz)
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', { timeZone: tz, hourCycle: 'h23', hour: '2-digit', minute: '2-digit', second: '2-digit' })
    formatters.set(tz, f)
  }
  const parts = f.formatToParts(now)
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0)
  return get('hour') * 3600 + get('minute') * 60 + get('second')
}

/** Inside quiet hours at `now` — the same rule as the SQL of `quietSql` (start inclusive, end exclusive). */
export function inQuietHours(q: Wake['quiet_hours'], now = new Date()): boolean {
  if (!q) return false
  const t = localSeconds(q.tz, now)
  const s = secondsOf(q.start)
  const e = secondsOf(q.end)
  return s < e ? t >= s && t < e : t >= s || t < e
}

/** A time zone both this process (Intl) and Postgres know; the SQL side of the rule needs the latter. */
export function intlKnowsZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: tz })
    return true
  } catch {
    return false
  }
}
