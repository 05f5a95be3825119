CREATE TABLE "delivery_acks" (
	"agent_id" text NOT NULL,
	"conversation_id" text NOT NULL,
	"seq" bigint NOT NULL,
	"delivered_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "delivery_acks_agent_id_conversation_id_seq_pk" PRIMARY KEY("agent_id","conversation_id","seq")
);
