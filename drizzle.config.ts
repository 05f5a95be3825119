import { defineConfig } from 'drizzle-kit'

// Migrations are generated from src/db/schema.ts and applied at boot by src/db/migrate.ts,
// identically on PGlite (embedded default) and real Postgres.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './drizzle',
})
