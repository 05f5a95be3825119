CREATE TABLE "approvals" (
	"id" text PRIMARY KEY NOT NULL,
	"sender_id" text NOT NULL,
	"recipient_id" text NOT NULL,
	"client_msg_id" text NOT NULL,
	"category" text NOT NULL,
	"request" jsonb NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"decided_by" text,
	"message_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"decided_at" timestamp with time zone
);
--> statement-breakpoint
CREATE UNIQUE INDEX "approvals_request_uq" ON "approvals" USING btree ("sender_id","recipient_id","client_msg_id");--> statement-breakpoint
CREATE INDEX "approvals_recipient_idx" ON "approvals" USING btree ("recipient_id","status","created_at");