CREATE SEQUENCE "public"."messages_position_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1;--> statement-breakpoint
CREATE TABLE "delivery_skips" (
	"agent_id" text NOT NULL,
	"conversation_id" text NOT NULL,
	"seq" bigint NOT NULL,
	CONSTRAINT "delivery_skips_agent_id_conversation_id_seq_pk" PRIMARY KEY("agent_id","conversation_id","seq")
);
--> statement-breakpoint
CREATE TABLE "message_reads" (
	"agent_id" text NOT NULL,
	"conversation_id" text NOT NULL,
	"seq" bigint NOT NULL,
	"read_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "message_reads_agent_id_conversation_id_seq_pk" PRIMARY KEY("agent_id","conversation_id","seq")
);
--> statement-breakpoint
ALTER TABLE "conversation_members" ADD COLUMN "delivered_seq" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "conversation_members" ADD COLUMN "delivered_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "conversation_members" ADD COLUMN "read_seq" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "conversation_members" ADD COLUMN "read_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "position" bigint;--> statement-breakpoint
-- Delivery state moves from one envelope row per recipient to cursors on conversation_members.
-- Existing messages take the position of their first envelope, so the delivery ids clients hold
-- (del_ + envelope position) still order the same way; the rest follow in creation order.
UPDATE "messages" m SET "position" = e.p FROM (SELECT message_id, min(position) AS p FROM "envelopes" GROUP BY message_id) e WHERE e.message_id = m.id;--> statement-breakpoint
SELECT setval('messages_position_seq', COALESCE((SELECT max(position) FROM "envelopes"), 0) + 1, false);--> statement-breakpoint
UPDATE "messages" m SET "position" = o.p FROM (SELECT id, nextval('messages_position_seq') AS p FROM (SELECT id FROM "messages" WHERE "position" IS NULL ORDER BY created_at, conversation_id, seq) ordered) o WHERE o.id = m.id;--> statement-breakpoint
ALTER TABLE "messages" ALTER COLUMN "position" SET DEFAULT nextval('messages_position_seq');--> statement-breakpoint
ALTER TABLE "messages" ALTER COLUMN "position" SET NOT NULL;--> statement-breakpoint
-- Cursors: delivered (read) through the seq before the member's first stored (unread) envelope,
-- or through the conversation's last seq when there is none.
UPDATE "conversation_members" mm SET
  "delivered_seq" = COALESCE((SELECT min(e.seq) - 1 FROM "envelopes" e WHERE e.recipient_id = mm.agent_id AND e.conversation_id = mm.conversation_id AND e.status = 0), c.last_seq),
  "read_seq" = COALESCE((SELECT min(e.seq) - 1 FROM "envelopes" e WHERE e.recipient_id = mm.agent_id AND e.conversation_id = mm.conversation_id AND e.status < 2), c.last_seq),
  "delivered_at" = (SELECT max(e.delivered_at) FROM "envelopes" e WHERE e.recipient_id = mm.agent_id AND e.conversation_id = mm.conversation_id),
  "read_at" = (SELECT max(e.read_at) FROM "envelopes" e WHERE e.recipient_id = mm.agent_id AND e.conversation_id = mm.conversation_id)
FROM "conversations" c WHERE c.id = mm.conversation_id;--> statement-breakpoint
-- Messages read one by one ahead of the read cursor stay read.
INSERT INTO "message_reads" (agent_id, conversation_id, seq, read_at)
SELECT e.recipient_id, e.conversation_id, e.seq, COALESCE(e.read_at, now()) FROM "envelopes" e
JOIN "conversation_members" mm ON mm.conversation_id = e.conversation_id AND mm.agent_id = e.recipient_id
WHERE e.status = 2 AND e.seq > mm.read_seq ON CONFLICT DO NOTHING;--> statement-breakpoint
-- Group messages a member never had an envelope for (skipped at the backlog cap) stay skipped.
INSERT INTO "delivery_skips" (agent_id, conversation_id, seq)
SELECT mm.agent_id, m.conversation_id, m.seq FROM "conversation_members" mm
JOIN "conversations" c ON c.id = mm.conversation_id AND c.type = 'group'
JOIN "messages" m ON m.conversation_id = mm.conversation_id AND m.seq > mm.delivered_seq AND m.seq >= mm.joined_seq AND m.sender_id <> mm.agent_id
WHERE NOT EXISTS (SELECT 1 FROM "envelopes" e WHERE e.message_id = m.id AND e.recipient_id = mm.agent_id) ON CONFLICT DO NOTHING;