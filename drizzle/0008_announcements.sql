CREATE TABLE "announcements" (
	"id" text PRIMARY KEY NOT NULL,
	"text" text NOT NULL,
	"data" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"audience_before" timestamp with time zone DEFAULT now() NOT NULL,
	"fanout_after" text DEFAULT '' NOT NULL,
	"delivered" integer DEFAULT 0 NOT NULL,
	"fanout_done_at" timestamp with time zone,
	"lease_owner" text,
	"lease_until" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "announcements_pending_idx" ON "announcements" USING btree ("created_at") WHERE fanout_done_at IS NULL;--> statement-breakpoint
-- The system agent, seeded on first boot (contract §16.3). It has no key until an operator
-- rotates one through POST /internal/rotate-system-agent-key; its handle is reserved.
INSERT INTO "agents" ("id", "handle", "email", "display_name", "description", "is_system", "api_key_hash")
VALUES ('agt_chatfather', 'chatfather', 'chatfather@system.invalid', 'ChatFather', 'System agent of this network: operator announcements and support.', true, NULL)
ON CONFLICT DO NOTHING;
