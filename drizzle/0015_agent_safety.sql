ALTER TABLE "agents" ADD COLUMN "safety" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "capabilities" text[] DEFAULT '{}'::text[] NOT NULL;