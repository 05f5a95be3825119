// The headline number: many agent pairs, every receiver on a WebSocket with `ack`, senders on a
// ramping arrival rate. Reports accepted sends/s, send latency p95/p99, send→delivery latency
// (a custom Trend), and the first rate at which p99 passes 100 ms or errors exceed 0.1 %.
import http from 'k6/http'
import { WebSocket } from 'k6/websockets'
import { setTimeout } from 'k6/timers'
import { Counter, Trend } from 'k6/metrics'
import exec from 'k6/execution'
import { summarize } from './lib/summary.js'

const seed = JSON.parse(open(__ENV.SEED_FILE))
const BASES = (__ENV.BASE_URLS || 'http://127.0.0.1:3000').split(',')
const PAIRS = seed.pairs.length
const START = Number(__ENV.START_RATE || 500)
const TARGET = Number(__ENV.TARGET_RATE || 6000)
const DURATION_S = Number(__ENV.DURATION_S || 60)
const STEP_S = Number(__ENV.STEP_S || 5)
const STAGES = Math.ceil(DURATION_S / STEP_S)
const WARMUP_S = 4
/** Seconds at START_RATE before the ramp: first touches (caches, counters, JIT) stay out of the stages. */
const WARM_S = 10

const delivery = new Trend('delivery_ms', true)
const delivered = new Counter('delivered')
const accepted = new Counter('accepted')

const thresholds = { delivered: ['count>0'] }
for (let k = 0; k < STAGES; k++) {
  // Always-true thresholds: they make k6 keep per-stage submetrics for the summary.
  thresholds[`http_req_duration{stage:${k}}`] = ['p(99)>=0']
  thresholds[`http_req_failed{stage:${k}}`] = ['rate>=0']
  thresholds[`accepted{stage:${k}}`] = ['count>=0']
}

export const options = {
  scenarios: {
    receivers: { executor: 'per-vu-iterations', vus: PAIRS, iterations: 1, maxDuration: `${DURATION_S + WARMUP_S + WARM_S + 20}s`, exec: 'receive' },
    warmup: {
      executor: 'constant-arrival-rate',
      startTime: `${WARMUP_S}s`,
      rate: START,
      timeUnit: '1s',
      duration: `${WARM_S}s`,
      preAllocatedVUs: 100,
      maxVUs: 500,
      exec: 'send',
    },
    senders: {
      executor: 'ramping-arrival-rate',
      startTime: `${WARMUP_S + WARM_S}s`,
      startRate: START,
      timeUnit: '1s',
      preAllocatedVUs: 300,
      maxVUs: 2000,
      stages: [{ target: TARGET, duration: `${DURATION_S}s` }],
      exec: 'send',
    },
  },
  thresholds,
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
}

export function setup() {
  return { sendStart: Date.now() + (WARMUP_S + WARM_S) * 1000 }
}

export function receive() {
  const pair = seed.pairs[(__VU - 1) % PAIRS]
  const ws = new WebSocket(`${BASES[(__VU - 1) % BASES.length].replace('http', 'ws')}/v1/ws`)
  ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', api_key: pair.b.apiKey, capabilities: ['ack'] }))
  ws.onmessage = (e) => {
    const f = JSON.parse(e.data)
    if (f.type !== 'message.new') return
    const t = f.payload.content && f.payload.content.data && f.payload.content.data.t
    if (t) delivery.add(Date.now() - t)
    delivered.add(1)
    ws.send(JSON.stringify({ type: 'ack', message_id: f.payload.id }))
  }
  setTimeout(() => ws.close(), (DURATION_S + WARMUP_S + WARM_S + 5) * 1000)
}

export function send(data) {
  const stage = exec.scenario.name === 'warmup' ? 'warmup' : Math.min(STAGES - 1, Math.max(0, Math.floor((Date.now() - data.sendStart) / 1000 / STEP_S)))
  // Round-robin over every pair across all VUs, so each sender stays far below 60/s.
  const i = exec.scenario.iterationInTest + (exec.scenario.name === 'warmup' ? 10_000_000 : 0)
  const pair = seed.pairs[i % PAIRS]
  const res = http.post(
    `${BASES[i % BASES.length]}/v1/messages`,
    JSON.stringify({ to: pair.b.handle, client_msg_id: `tp-${i}`, content: { text: 'throughput', data: { t: Date.now() } } }),
    { headers: { 'content-type': 'application/json', authorization: `Bearer ${pair.a.apiKey}` }, tags: { stage: String(stage) } },
  )
  if (res.status === 201) accepted.add(1, { stage: String(stage) })
}

export function handleSummary(data) {
  const rows = ['| offered/s (stage) | accepted/s | p95 ms | p99 ms | errors % |', '| ---: | ---: | ---: | ---: | ---: |']
  let knee = null
  for (let k = 0; k < STAGES; k++) {
    const d = data.metrics[`http_req_duration{stage:${k}}`]
    const f = data.metrics[`http_req_failed{stage:${k}}`]
    const a = data.metrics[`accepted{stage:${k}}`]
    if (!d) continue
    const offered = Math.round(START + ((TARGET - START) * (k + 0.5) * STEP_S) / DURATION_S)
    const p99 = d.values['p(99)']
    const errPct = f ? f.values.rate * 100 : 0
    rows.push(`| ${offered} | ${a ? (a.values.count / STEP_S).toFixed(0) : 0} | ${d.values['p(95)'].toFixed(1)} | ${p99.toFixed(1)} | ${errPct.toFixed(2)} |`)
    if (knee === null && (p99 > 100 || errPct > 0.1)) knee = offered
  }
  const extra = `\n${rows.join('\n')}\n\nFirst offered rate with p99 > 100 ms or errors > 0.1 %: ${knee === null ? `none up to ${TARGET}/s` : `${knee}/s`}\n`
  return summarize('throughput', data, [
    ['accepted sends', 'accepted', 'count'],
    ['accepted sends/s (whole run)', 'accepted', 'rate'],
    ['send p95 ms', 'http_req_duration', 'p(95)'],
    ['send p99 ms', 'http_req_duration', 'p(99)'],
    ['delivery p50 ms', 'delivery_ms', 'p(50)'],
    ['delivery p99 ms', 'delivery_ms', 'p(99)'],
    ['frames delivered', 'delivered', 'count'],
  ], extra)
}
