import { afterAll, describe, expect, test } from 'bun:test'
import { Gauge } from 'prom-client'
import { combine, ShardMetrics, type WorkerPort } from '../../src/metrics/gather.ts'
import { Metrics, type MetricsJson } from '../../src/metrics/metrics.ts'
import type { MainToWorker } from '../../src/metrics/shard-protocol.ts'

/** `name{labels} value` → value, for exact lines of the text format. */
function line(text: string, series: string): number | undefined {
  const l = text.split('\n').find((x) => x.startsWith(`${series} `))
  return l === undefined ? undefined : Number(l.slice(series.length + 1))
}

const made: Metrics[] = []
function worker(setup: (m: Metrics) => void, firstValue?: number): Metrics {
  const m = new Metrics()
  made.push(m)
  setup(m)
  if (firstValue !== undefined) {
    // Stands in for the gauges read from Postgres: the same fact seen by every worker.
    new Gauge({ name: 'agentchat_test_db_fact', help: 'x', aggregator: 'first', registers: [m.registry] }).set(firstValue)
  }
  return m
}

/** What crosses postMessage: a structured clone, not the registry's live objects. */
const snap = async (m: Metrics): Promise<MetricsJson> => structuredClone(await m.snapshot())

afterAll(() => made.forEach((m) => m.stop()))

describe('combining worker snapshots', () => {
  test('counters and histograms are summed, `first` gauges are not', async () => {
    const w0 = worker((m) => {
      m.sendAccepted('direct')
      m.sendAccepted('direct')
      m.sendRefused('RATE_LIMITED')
      m.httpRequest('POST', '/v1/messages', 201, 0.003)
      m.writerFlushed(10, 0.002)
    }, 5)
    const w1 = worker((m) => {
      m.sendAccepted('direct')
      m.sendAccepted('group')
      m.sendRefused('RATE_LIMITED')
      m.sendRefused('RECIPIENT_BACKLOGGED')
      m.httpRequest('POST', '/v1/messages', 201, 0.2)
      m.httpRequest('BREW', undefined, 404, 0.001)
      m.delivered('socket', 3)
      m.writerFlushed(30, 0.004)
    }, 7)
    const { body } = await combine([await snap(w0), await snap(w1)], 0)
    expect(line(body, 'agentchat_sends_accepted_total{kind="direct"}')).toBe(3)
    expect(line(body, 'agentchat_sends_accepted_total{kind="group"}')).toBe(1)
    expect(line(body, 'agentchat_sends_refused_total{code="RATE_LIMITED"}')).toBe(2)
    expect(line(body, 'agentchat_sends_refused_total{code="RECIPIENT_BACKLOGGED"}')).toBe(1)
    expect(line(body, 'agentchat_deliveries_total{path="socket"}')).toBe(3)
    expect(line(body, 'agentchat_deliveries_total{path="webhook"}')).toBe(0)
    // Bucket-wise: 3 ms falls in le=0.005, 200 ms only from le=0.25 up.
    const h = 'agentchat_http_request_duration_seconds'
    expect(line(body, `${h}_bucket{route="/v1/messages",method="POST",status="201",le="0.005"}`)).toBe(1)
    expect(line(body, `${h}_bucket{route="/v1/messages",method="POST",status="201",le="0.25"}`)).toBe(2)
    expect(line(body, `${h}_bucket{route="/v1/messages",method="POST",status="201",le="+Inf"}`)).toBe(2)
    expect(line(body, `${h}_count{route="/v1/messages",method="POST",status="201"}`)).toBe(2)
    expect(line(body, `${h}_sum{route="/v1/messages",method="POST",status="201"}`)).toBeCloseTo(0.203, 6)
    // Unknown methods and unmatched routes do not mint label values.
    expect(line(body, `${h}_count{route="unmatched",method="OTHER",status="404"}`)).toBe(1)
    expect(line(body, 'agentchat_writer_batch_size_sum')).toBe(40)
    expect(line(body, 'agentchat_writer_batch_size_count')).toBe(2)
    expect(line(body, 'agentchat_test_db_fact')).toBe(5)
    expect(line(body, 'agentchat_shard_workers{state="answered"}')).toBe(2)
    expect(line(body, 'agentchat_shard_workers{state="missing"}')).toBe(0)
  })

  test('a counter keeps counting across scrapes (deltas reach prom-client once)', async () => {
    const m = worker(() => {})
    m.sendAccepted('group')
    expect(line((await m.scrape()).body, 'agentchat_sends_accepted_total{kind="group"}')).toBe(1)
    expect(line((await m.scrape()).body, 'agentchat_sends_accepted_total{kind="group"}')).toBe(1)
    m.sendAccepted('group')
    expect(line((await m.scrape()).body, 'agentchat_sends_accepted_total{kind="group"}')).toBe(2)
  })
})

describe('gathering from worker threads', () => {
  /** A worker that answers `metrics.collect` from its own thread's turn, or never. */
  function port(sm: () => ShardMetrics, index: number, m: Metrics | null): WorkerPort {
    return {
      postMessage(msg: MainToWorker) {
        if (msg.type !== 'metrics.collect' || !m) return
        void snap(m).then((json) => setTimeout(() => sm().snapshot(index, msg.id, json), 5))
      },
    }
  }

  test('a worker that does not answer is left out after the timeout, and counted missing', async () => {
    const a = worker((m) => m.sendAccepted('direct'), 1)
    const b = worker((m) => m.sendAccepted('direct'), 2)
    let sm!: ShardMetrics
    // Four slots: three ready (one of them silent), one still booting.
    const ready = new Map<number, WorkerPort>([
      [0, port(() => sm, 0, a)],
      [1, port(() => sm, 1, null)],
      [2, port(() => sm, 2, b)],
    ])
    sm = new ShardMetrics(() => ({ total: 4, ready }), 300)
    const started = performance.now()
    const { body } = await sm.gather()
    expect(performance.now() - started).toBeGreaterThanOrEqual(290)
    expect(line(body, 'agentchat_sends_accepted_total{kind="direct"}')).toBe(2)
    expect(line(body, 'agentchat_test_db_fact')).toBe(1)
    expect(line(body, 'agentchat_shard_workers{state="answered"}')).toBe(2)
    expect(line(body, 'agentchat_shard_workers{state="missing"}')).toBe(2)
  })

  test('answers as soon as every ready worker has; late answers to a finished round are dropped', async () => {
    const a = worker((m) => m.sendAccepted('group'))
    const b = worker((m) => m.sendAccepted('group'))
    let sm!: ShardMetrics
    const ready = new Map<number, WorkerPort>([
      [0, port(() => sm, 0, a)],
      [1, port(() => sm, 1, b)],
    ])
    sm = new ShardMetrics(() => ({ total: 2, ready }), 5_000)
    const started = performance.now()
    const { body, contentType } = await sm.gather()
    expect(performance.now() - started).toBeLessThan(2_000)
    expect(contentType).toContain('text/plain')
    expect(line(body, 'agentchat_sends_accepted_total{kind="group"}')).toBe(2)
    sm.snapshot(0, 1, await snap(a)) // round 1 is over: ignored, no throw
  })

  test('no ready worker: an answer at once, with every slot missing', async () => {
    const sm = new ShardMetrics(() => ({ total: 2, ready: new Map() }), 5_000)
    const { body } = await sm.gather()
    expect(line(body, 'agentchat_shard_workers{state="missing"}')).toBe(2)
  })
})
