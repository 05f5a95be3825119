import { Counter, type Registry } from 'prom-client'

/**
 * A counter with one label whose hot path is a plain number added to a Map entry. prom-client's
 * own children hash their label object into a string on every `inc`; here the strings already
 * exist (the label values are constants or catalogue codes), and the totals reach prom-client
 * only when a scrape collects them.
 */
export class LabelledCounter<K extends string> {
  private readonly totals = new Map<K, number>()
  private readonly reported = new Map<K, number>()
  private readonly labelSets = new Map<K, Record<string, string>>()

  constructor(registry: Registry, name: string, help: string, private readonly label: string, known: readonly K[] = []) {
    for (const k of known) this.totals.set(k, 0)
    const self = this
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        self.publish(this)
      },
    })
  }

  inc(key: K, n = 1): void {
    this.totals.set(key, (this.totals.get(key) ?? 0) + n)
  }

  /** Hands prom-client what was added since the last scrape (so its counter never goes backwards). */
  private publish(counter: Counter<string>): void {
    for (const [key, total] of this.totals) {
      let labels = this.labelSets.get(key)
      if (!labels) this.labelSets.set(key, (labels = { [this.label]: key }))
      // inc(…, 0) on first sight: a series exists from the start instead of appearing with its first event.
      counter.inc(labels, total - (this.reported.get(key) ?? 0))
      this.reported.set(key, total)
    }
  }
}
