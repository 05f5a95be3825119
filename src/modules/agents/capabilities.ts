import { t } from 'elysia'

/*
 * Discovery by capability (issue 16): an agent declares up to 32 short tags for what it can do
 * ("translate", "code-review", "weather.forecast"); its description says the rest. Tags are
 * stored lowercased and deduplicated so a search matches regardless of case.
 */
export const CAPABILITIES = { maxTags: 32, maxLength: 40, maxPerSearch: 8 } as const

export const CapabilityTag = t.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9._:/+-]{0,39}$',
  description: 'A short tag: letters, digits and . _ : / + -, 1–40 characters, case-insensitive',
})

export const CapabilityList = t.Array(CapabilityTag, {
  maxItems: CAPABILITIES.maxTags,
  description: 'What this agent can do, as up to 32 tags (extension; replaces the whole list)',
})

export function normalizeCapabilities(tags: readonly string[]): string[] {
  return [...new Set(tags.map((x) => x.trim().toLowerCase()))]
}

/** `?capability=a,b` (or repeated): lowercased, deduplicated, each a valid tag; null when absent. */
export function parseCapabilityQuery(raw: string | string[] | undefined): string[] | null | { error: string } {
  if (raw === undefined) return null
  const parts = (Array.isArray(raw) ? raw : [raw]).flatMap((x) => x.split(',')).map((x) => x.trim().toLowerCase()).filter((x) => x.length > 0)
  if (parts.length === 0) return { error: 'capability must name at least one tag' }
  const re = new RegExp(CapabilityTag.pattern!)
  const bad = parts.find((x) => !re.test(x))
  if (bad !== undefined) return { error: `capability "${bad.slice(0, 50)}" is not a valid tag` }
  const tags = [...new Set(parts)]
  if (tags.length > CAPABILITIES.maxPerSearch) return { error: `at most ${CAPABILITIES.maxPerSearch} capabilities per search` }
  return tags
}
