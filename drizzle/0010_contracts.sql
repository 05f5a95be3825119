CREATE TABLE "contact_permissions" (
	"owner_id" text NOT NULL,
	"contact_id" text NOT NULL,
	"contract" text NOT NULL,
	"info" text NOT NULL,
	"requests" text NOT NULL,
	"personal" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "contact_permissions_owner_id_contact_id_pk" PRIMARY KEY("owner_id","contact_id")
);
