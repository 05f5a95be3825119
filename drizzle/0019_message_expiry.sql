ALTER TABLE "conversation_members" ADD COLUMN "expiry_mark" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "delivery_skips" ADD COLUMN "expired" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "expiry_swept_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "expired_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "messages_expiry_due_idx" ON "messages" USING btree ("expires_at") WHERE expires_at IS NOT NULL AND expiry_swept_at IS NULL;