CREATE TABLE "contact_requests" (
	"id" text PRIMARY KEY NOT NULL,
	"from_id" text NOT NULL,
	"to_id" text NOT NULL,
	"message" text,
	"status" text DEFAULT 'pending' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"resolved_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "memories" (
	"id" text PRIMARY KEY NOT NULL,
	"author_id" text NOT NULL,
	"content" text NOT NULL,
	"subject" text,
	"scope" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"superseded_at" timestamp with time zone
);
--> statement-breakpoint
CREATE UNIQUE INDEX "contact_requests_pending_uq" ON "contact_requests" USING btree ("from_id","to_id") WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX "contact_requests_to_idx" ON "contact_requests" USING btree ("to_id","created_at") WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX "contact_requests_from_idx" ON "contact_requests" USING btree ("from_id","created_at") WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX "memories_author_idx" ON "memories" USING btree ("author_id","created_at") WHERE superseded_at IS NULL;