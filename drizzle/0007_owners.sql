CREATE TABLE "audit_events" (
	"id" text PRIMARY KEY NOT NULL,
	"agent_id" text,
	"owner_id" text,
	"actor_type" text NOT NULL,
	"action" text NOT NULL,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "dashboard_tickets" (
	"ticket" text PRIMARY KEY NOT NULL,
	"owner_id" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "owner_claims" (
	"agent_id" text PRIMARY KEY NOT NULL,
	"owner_id" text NOT NULL,
	"claimed_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "owner_sessions" (
	"id" text PRIMARY KEY NOT NULL,
	"owner_id" text NOT NULL,
	"family_id" text NOT NULL,
	"access_hash" text NOT NULL,
	"refresh_hash" text NOT NULL,
	"access_expires_at" timestamp with time zone NOT NULL,
	"refresh_expires_at" timestamp with time zone NOT NULL,
	"rotated_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	"ip" text,
	"user_agent" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "owners" (
	"id" text PRIMARY KEY NOT NULL,
	"email" text NOT NULL,
	"display_name" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "support_escalations" (
	"id" text PRIMARY KEY NOT NULL,
	"agent_id" text,
	"status" text DEFAULT 'open' NOT NULL,
	"subject" text NOT NULL,
	"body" text,
	"resolution_note" text,
	"resolved_by" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "audit_events_agent_idx" ON "audit_events" USING btree ("agent_id","created_at");--> statement-breakpoint
CREATE INDEX "audit_events_owner_idx" ON "audit_events" USING btree ("owner_id","created_at");--> statement-breakpoint
CREATE INDEX "owner_claims_owner_idx" ON "owner_claims" USING btree ("owner_id","claimed_at");--> statement-breakpoint
CREATE UNIQUE INDEX "owner_sessions_access_uq" ON "owner_sessions" USING btree ("access_hash");--> statement-breakpoint
CREATE UNIQUE INDEX "owner_sessions_refresh_uq" ON "owner_sessions" USING btree ("refresh_hash");--> statement-breakpoint
CREATE INDEX "owner_sessions_family_idx" ON "owner_sessions" USING btree ("family_id");--> statement-breakpoint
CREATE INDEX "owner_sessions_owner_idx" ON "owner_sessions" USING btree ("owner_id");--> statement-breakpoint
CREATE UNIQUE INDEX "owners_email_uq" ON "owners" USING btree ("email");--> statement-breakpoint
CREATE INDEX "support_escalations_status_idx" ON "support_escalations" USING btree ("status","created_at");