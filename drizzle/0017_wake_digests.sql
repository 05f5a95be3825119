CREATE TABLE "wake_digests" (
	"agent_id" text NOT NULL,
	"window_end" timestamp with time zone NOT NULL,
	"window_start" timestamp with time zone NOT NULL,
	"held" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "wake_digests_agent_id_window_end_pk" PRIMARY KEY("agent_id","window_end")
);
