import { ApiError } from './errors.ts'

/*
 * Input hygiene, in one place, before any route runs. Postgres cannot store U+0000 in text or
 * jsonb, nor a string that is not valid Unicode (invalid UTF-8 bytes, or a lone surrogate such as
 * "\ud800", which JSON allows as an escape); either makes the statement fail. On the send path
 * one statement carries many agents' messages, so a single bad string used to fail everyone's
 * sends in that flush. Refusing such input at the edge, naming the field, keeps one client's bad
 * bytes its own problem.
 */

/** JSON bodies larger than this are refused (messages are capped at 32 KiB; nothing JSON needs more). */
export const MAX_JSON_BODY_BYTES = 1024 * 1024
/** Deeper than this, a JSON value is refused (nothing on the wire nests past a handful of levels). */
export const MAX_JSON_DEPTH = 64

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Why a string cannot be stored, or null when it can. */
export function unstorable(s: string): string | null {
  if (s.includes('\u0000')) return 'contains U+0000 (NUL), which cannot be stored'
  if (!s.isWellFormed()) return 'contains a lone surrogate (not valid Unicode)'
  return null
}

const segment = (key: string) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : JSON.stringify(key))

/** The first problem in a parsed JSON value: a string or key that cannot be stored, or nesting past the limit. */
export function findBadValue(v: unknown, path = '', depth = 0): { path: string; reason: string } | null {
  if (typeof v === 'string') {
    const why = unstorable(v)
    return why ? { path, reason: why } : null
  }
  if (v === null || typeof v !== 'object') return null
  if (depth >= MAX_JSON_DEPTH) return { path, reason: `is nested more than ${MAX_JSON_DEPTH} levels deep` }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const bad = findBadValue(v[i], `${path}[${i}]`, depth + 1)
      if (bad) return bad
    }
    return null
  }
  for (const key of Object.keys(v)) {
    const at = path ? `${path}.${segment(key)}` : segment(key)
    const why = unstorable(key)
    if (why) return { path: at, reason: `has a key that ${why}` }
    const bad = findBadValue((v as Record<string, unknown>)[key], at, depth + 1)
    if (bad) return bad
  }
  return null
}

/** 400 VALIDATION_ERROR naming the field, in the zod-flatten shape the schema errors use. */
export function fieldError(path: string, reason: string): ApiError {
  const field = path.split(/[.[]/)[0] ?? ''
  const text = `${path || 'body'} ${reason}`
  return new ApiError('VALIDATION_ERROR', `Invalid request: ${text}`, field ? { formErrors: [], fieldErrors: { [field]: [text] } } : { formErrors: [text], fieldErrors: {} })
}

/**
 * Parse a request body as JSON, whatever its Content-Type (the contract's routes take JSON only).
 * An empty body is an empty object, so routes that take no body, or only optional fields, work
 * without one. Returns the value or the ApiError to answer with.
 */
export function parseJsonBody(bytes: Uint8Array): unknown | ApiError {
  if (bytes.byteLength > MAX_JSON_BODY_BYTES) return new ApiError('PAYLOAD_TOO_LARGE', `Request body exceeds ${MAX_JSON_BODY_BYTES} bytes`)
  let text: string
  try {
    text = strictUtf8.decode(bytes)
  } catch {
    return new ApiError('VALIDATION_ERROR', 'Invalid JSON body: not valid UTF-8')
  }
  if (text.trim() === '') return {}
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return new ApiError('VALIDATION_ERROR', 'Invalid JSON body')
  }
  const bad = findBadValue(value)
  return bad ? fieldError(bad.path, bad.reason) : value
}

/** Decode one percent-encoded URL component strictly; null when it is not valid UTF-8. */
function decodeComponent(raw: string, plusIsSpace: boolean): string | null {
  try {
    return decodeURIComponent(plusIsSpace ? raw.replace(/\+/g, ' ') : raw)
  } catch {
    return null
  }
}

/** Query strings: every key and value must decode to storable text, else 400 naming the field. */
export function checkQuery(query: string): ApiError | null {
  if (query === '') return null
  for (const pair of query.split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const rawKey = eq < 0 ? pair : pair.slice(0, eq)
    const key = decodeComponent(rawKey, true)
    if (key === null) return fieldError('query', 'has a parameter name that is not valid UTF-8')
    const keyProblem = unstorable(key)
    if (keyProblem) return fieldError('query', `has a parameter name that ${keyProblem}`)
    if (eq < 0) continue
    const value = decodeComponent(pair.slice(eq + 1), true)
    const name = segment(key)
    if (value === null) return fieldError(name, 'is not valid UTF-8')
    const why = unstorable(value)
    if (why) return fieldError(name, why)
  }
  return null
}

/** What every path segment that cannot be decoded to storable text is replaced with. */
const UNMATCHABLE = '%EF%BF%BD'

/**
 * Path segments are identifiers (handles, ids). One that contains U+0000 or is not valid UTF-8
 * can match nothing, so it is replaced by U+FFFD (which no handle or id contains): routing is
 * unchanged and the route answers its own masked 404 (AGENT_NOT_FOUND, GROUP_NOT_FOUND, …), as
 * for any identifier that does not exist. Returns the cleaned path, or null when it was clean.
 */
export function cleanPath(path: string): string | null {
  if (!path.includes('%')) return null
  let changed = false
  const out = path.split('/').map((seg) => {
    if (!seg.includes('%')) return seg
    const decoded = decodeComponent(seg, false)
    if (decoded !== null && unstorable(decoded) === null) return seg
    changed = true
    return UNMATCHABLE
  })
  return changed ? out.join('/') : null
}

/**
 * A route `transform` hook: the object at `field` of the body may hold only the keys its schema
 * lists (settings objects). It runs on the body as sent, before the schema step drops unknown
 * keys, so a misspelt setting is a 400 naming it rather than a silent no-op.
 */
export function onlyKnownKeys(field: string, schema: { properties: Record<string, unknown> }) {
  const known = new Set(Object.keys(schema.properties))
  return ({ body }: { body: unknown }) => {
    // A body that is JSON but not an object (null, [], "x", 42): Elysia's normalising step can
    // let it through as `{}` once the settings schema nests objects, so it is refused here.
    if (body !== undefined && (body === null || typeof body !== 'object' || Array.isArray(body))) {
      throw new ApiError('VALIDATION_ERROR', 'The request body must be a JSON object')
    }
    const v = (body as Record<string, unknown> | undefined)?.[field]
    if (!v || typeof v !== 'object' || Array.isArray(v)) return
    for (const key of Object.keys(v)) {
      if (!known.has(key)) throw fieldError(`${field}.${segment(key)}`, `is not a known setting (known: ${[...known].join(', ')})`)
    }
  }
}
