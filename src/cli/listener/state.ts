// The listener's memory across restarts, in one small JSON file rewritten atomically (tmp +
// fsync + rename, config.ts) after every step that must survive a crash:
//  - `completed`: messages whose handling finished (reply sent or deliberately not sent) but
//    that may not be acknowledged yet — after a crash between "done" and "ack" they are acked
//    on restart instead of run again;
//  - `attempts`: how often CMD failed on a message, so the retry bound holds across restarts;
//  - `last_acked_delivery_id`: the server-side cursor, for the operator's eyes and the logs.
// Only the newest COMPLETED_KEPT completions are kept: older ones are long acknowledged and the
// server never offers them again.
import { readFileSync } from 'node:fs'
import { writeFileAtomic } from '../config.ts'

export const COMPLETED_KEPT = 1000

export type Outcome = 'replied' | 'no_reply' | 'refused' | 'held' | 'skipped' | 'own' | 'system'

export interface Completed {
  id: string
  delivery_id: string | null
  outcome: Outcome
  at: string
}

export interface StateData {
  version: 1
  handle: string
  last_acked_delivery_id: string | null
  completed: Completed[]
  attempts: Record<string, number>
}

export class ListenerState {
  private constructor(
    readonly path: string,
    private data: StateData,
  ) {}

  /** Load `path`, or start empty when it does not exist. A file of another agent is refused. */
  static load(path: string, handle: string): ListenerState {
    let data: StateData = { version: 1, handle, last_acked_delivery_id: null, completed: [], attempts: {} }
    let text: string | undefined
    try {
      text = readFileSync(path, 'utf8')
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
    }
    if (text !== undefined) {
      const parsed = JSON.parse(text) as Partial<StateData>
      if (parsed.handle && parsed.handle !== handle) {
        throw new Error(`state file ${path} belongs to @${parsed.handle}, not @${handle}: pass --state`)
      }
      data = {
        version: 1,
        handle,
        last_acked_delivery_id: parsed.last_acked_delivery_id ?? null,
        completed: Array.isArray(parsed.completed) ? parsed.completed : [],
        attempts: parsed.attempts && typeof parsed.attempts === 'object' ? parsed.attempts : {},
      }
    }
    return new ListenerState(path, data)
  }

  get lastAcked(): string | null {
    return this.data.last_acked_delivery_id
  }

  completion(id: string): Completed | undefined {
    return this.data.completed.find((c) => c.id === id)
  }

  attempts(id: string): number {
    return this.data.attempts[id] ?? 0
  }

  /** CMD failed on `id` once more; returns the new count (persisted before returning). */
  failed(id: string): number {
    const n = this.attempts(id) + 1
    this.data.attempts[id] = n
    this.save()
    return n
  }

  /** Handling of `id` finished: persisted before the ack is sent. */
  complete(id: string, deliveryId: string | null, outcome: Outcome): void {
    delete this.data.attempts[id]
    this.data.completed = this.data.completed.filter((c) => c.id !== id)
    this.data.completed.push({ id, delivery_id: deliveryId, outcome, at: new Date().toISOString() })
    if (this.data.completed.length > COMPLETED_KEPT) this.data.completed.splice(0, this.data.completed.length - COMPLETED_KEPT)
    this.save()
  }

  acked(deliveryId: string): void {
    this.data.last_acked_delivery_id = deliveryId
    this.save()
  }

  private save(): void {
    writeFileAtomic(this.path, JSON.stringify(this.data) + '\n', 0o600)
  }
}
