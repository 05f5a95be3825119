DROP INDEX "approvals_request_uq";--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "owner_approval" text DEFAULT 'none' NOT NULL;--> statement-breakpoint
ALTER TABLE "approvals" ADD COLUMN "kind" text DEFAULT 'contract' NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "approvals_request_kind_uq" ON "approvals" USING btree ("kind","sender_id","recipient_id","client_msg_id");--> statement-breakpoint
CREATE INDEX "approvals_outgoing_idx" ON "approvals" USING btree ("sender_id","status","created_at") WHERE kind = 'outgoing';