CREATE TABLE "connection_invites" (
	"id" text PRIMARY KEY NOT NULL,
	"code_hash" text NOT NULL,
	"inviter_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"accepted_at" timestamp with time zone,
	"accepted_by" text,
	"contract" text,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
CREATE UNIQUE INDEX "connection_invites_code_hash_uq" ON "connection_invites" USING btree ("code_hash");--> statement-breakpoint
CREATE INDEX "connection_invites_pending_idx" ON "connection_invites" USING btree ("inviter_id","created_at") WHERE accepted_at IS NULL AND revoked_at IS NULL;