import type Redis from 'ioredis'
import type { Bus } from './bus/bus.ts'
import type { Config } from './config.ts'
import type { Database, Db } from './db/client.ts'
import type { IdempotencyStore } from './http/idempotency-store.ts'
import type { Logger } from './lib/log.ts'
import type { Counters } from './limits/counters.ts'
import type { Mailer } from './mail/mailer.ts'
import type { AgentStore } from './modules/agents/store.ts'
import type { Enforcement } from './modules/enforcement/service.ts'

/** Everything a route or service may use, built once per worker in `boot.ts`. */
export interface AppContext {
  config: Config
  log: Logger
  database: Database
  db: Db
  redis: Redis | undefined
  counters: Counters
  bus: Bus
  mailer: Mailer
  agents: AgentStore
  enforcement: Enforcement
  idempotency: IdempotencyStore
}
