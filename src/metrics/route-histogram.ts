import type { Metric, Registry } from 'prom-client'

interface Cell {
  labels: Record<string, string | number>
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  counts: Float64Array
  sum: number
  count: number
}

interface Value {
  labels: Record<string, string | number>
  value: number
  metricName: string
}

/**
 * A histogram labelled by route, method and status, observed once per HTTP request. A
 * prom-client Histogram child builds its label hash string on every `observe`; this one finds its
 * cell through three Map lookups on strings and a number that already exist, and builds the
 * exposition values only when scraped. It registers itself as a metric of the registry, in the
 * shape prom-client's own histograms return from `get()`, so the text format and
 * `AggregatorRegistry.aggregate` (bucket-wise sums across worker threads) treat it like one.
 */
export class RouteHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  private readonly cells = new Map<string, Map<string, Map<number, Cell>>>()

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
  ) {
    registry.registerMetric(this as unknown as Metric)
  }

  observe(route: string, method: string, status: number, seconds: number): void {
    let byMethod = this.cells.get(route)
    if (!byMethod) this.cells.set(route, (byMethod = new Map()))
    let byStatus = byMethod.get(method)
    if (!byStatus) byMethod.set(method, (byStatus = new Map()))
    let cell = byStatus.get(status)
    if (!cell) {
      cell = { labels: { route, method, status }, counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 }
      byStatus.set(status, cell)
    }
    let i = 0
    while (i < this.buckets.length && seconds > this.buckets[i]!) i++
    cell.counts[i]!++
    cell.sum += seconds
    cell.count++
  }

  async get() {
    const values: Value[] = []
    const bucketName = `${this.name}_bucket`
    for (const byMethod of this.cells.values()) {
      for (const byStatus of byMethod.values()) {
        for (const c of byStatus.values()) {
          let acc = 0
          for (let i = 0; i < this.buckets.length; i++) {
            acc += c.counts[i]!
            values.push({ labels: { ...c.labels, le: this.buckets[i]! }, value: acc, metricName: bucketName })
          }
          values.push({ labels: { ...c.labels, le: '+Inf' }, value: c.count, metricName: bucketName })
          values.push({ labels: c.labels, value: c.sum, metricName: `${this.name}_sum` })
          values.push({ labels: c.labels, value: c.count, metricName: `${this.name}_count` })
        }
      }
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset(): void {
    this.cells.clear()
  }
}
