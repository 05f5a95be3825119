/*
 * Wake filters (issue 16) as SQL, for the message.new webhooks the writer enqueues in its own
 * statement. The same rule as modules/messages/wake.ts (`wakes`), which decides live frames; the
 * agent-side settings are modules/agents/wake-settings.ts. Kept here, below the areas, because the
 * webhook outbox uses it.
 */
/**
 * The same rule in SQL for the writer's message.new webhooks: `ha` is the recipient's agents
 * row, `n` the numbered message (`snd` sender, `c` conversation, `ct` content, `md` metadata).
 * Handles are [a-z0-9-] only, so they are safe inside the regular expression.
 */
export const WAKE_FILTER_SQL = `(
  ha.safety->'wake' IS NULL
  OR EXISTS (SELECT 1 FROM agents wsa WHERE wsa.id = n.snd AND wsa.is_system)
  OR (
    NOT (jsonb_typeof(ha.safety->'wake'->'quiet_hours') = 'object' AND (
      CASE WHEN (ha.safety->'wake'->'quiet_hours'->>'start')::time < (ha.safety->'wake'->'quiet_hours'->>'end')::time
        THEN (now() AT TIME ZONE (ha.safety->'wake'->'quiet_hours'->>'tz'))::time >= (ha.safety->'wake'->'quiet_hours'->>'start')::time
         AND (now() AT TIME ZONE (ha.safety->'wake'->'quiet_hours'->>'tz'))::time < (ha.safety->'wake'->'quiet_hours'->>'end')::time
        ELSE (now() AT TIME ZONE (ha.safety->'wake'->'quiet_hours'->>'tz'))::time >= (ha.safety->'wake'->'quiet_hours'->>'start')::time
          OR (now() AT TIME ZONE (ha.safety->'wake'->'quiet_hours'->>'tz'))::time < (ha.safety->'wake'->'quiet_hours'->>'end')::time
      END))
    AND (CASE WHEN left(n.c, 4) = 'grp_'
      THEN COALESCE(ha.safety->'wake'->>'groups', 'all') = 'all'
        OR (jsonb_typeof(n.md->'mentions') = 'array'
          AND EXISTS (SELECT 1 FROM jsonb_array_elements(n.md->'mentions') wm WHERE jsonb_typeof(wm) = 'string' AND lower(ltrim(wm #>> '{}', '@')) = ha.handle))
        OR (n.ct->>'text') ~* ('(^|[^a-z0-9_@-])@' || ha.handle || '($|[^a-z0-9-]|-($|[^a-z0-9]))')
      ELSE COALESCE(ha.safety->'wake'->>'from', 'anyone') = 'anyone'
        OR EXISTS (SELECT 1 FROM contacts wc WHERE wc.owner_id = ha.id AND wc.contact_id = n.snd)
    END)
  )
)`
