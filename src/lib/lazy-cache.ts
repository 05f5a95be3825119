/**
 * A bounded read-through cache: values load once per key (concurrent misses share one load),
 * expire after `ttlMs`, and are dropped on `invalidate` (driven by bus events). Insertion order
 * gives cheap oldest-first eviction past `max` entries.
 */
export class LazyCache<K, V> {
  private readonly entries = new Map<K, { value: V; at: number }>()
  private readonly loading = new Map<K, Promise<V>>()
  /** Bumped on invalidate so a load that started before it does not store a stale value. */
  private readonly generation = new Map<K, number>()

  constructor(
    private readonly load: (key: K) => Promise<V>,
    private readonly ttlMs = 60_000,
    private readonly max = 100_000,
  ) {}

  peek(key: K): V | undefined {
    const e = this.entries.get(key)
    return e && Date.now() - e.at < this.ttlMs ? e.value : undefined
  }

  get(key: K): Promise<V> {
    const hit = this.peek(key)
    if (hit !== undefined) return Promise.resolve(hit)
    const inflight = this.loading.get(key)
    if (inflight) return inflight
    const gen = this.generation.get(key) ?? 0
    const p = this.load(key).then(
      (value) => {
        this.loading.delete(key)
        if ((this.generation.get(key) ?? 0) === gen) this.set(key, value)
        return value
      },
      (err) => {
        this.loading.delete(key)
        throw err
      },
    )
    this.loading.set(key, p)
    return p
  }

  set(key: K, value: V): void {
    this.entries.delete(key)
    this.entries.set(key, { value, at: Date.now() })
    if (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value as K
      this.entries.delete(oldest)
    }
  }

  invalidate(key: K): void {
    this.entries.delete(key)
    this.loading.delete(key)
    this.generation.set(key, (this.generation.get(key) ?? 0) + 1)
    if (this.generation.size > this.max) this.generation.clear()
  }
}
