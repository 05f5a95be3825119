// Soak: DURATION_S (default 10 minutes) at a steady rate with clients that reconnect every
// RECONNECT_S. Each VU owns one pair: it sends, receives on a reconnecting WebSocket (drain on
// every reconnect brings what was sent while away) and at the end compares sent and received
// message ids. Latency is a Trend over the whole run; the runner samples the server's RSS.
import http from 'k6/http'
import { WebSocket } from 'k6/websockets'
import { setTimeout, setInterval, clearInterval } from 'k6/timers'
import { Counter, Trend } from 'k6/metrics'
import { summarize } from './lib/summary.js'

const seed = JSON.parse(open(__ENV.SEED_FILE))
const BASES = (__ENV.BASE_URLS || 'http://127.0.0.1:3000').split(',')
const PAIRS = Math.min(Number(__ENV.VUS || 100), seed.pairs.length)
const PER_PAIR = Number(__ENV.PER_PAIR_RATE || 10)
const DURATION_S = Number(__ENV.DURATION_S || 600)
const RECONNECT_S = Number(__ENV.RECONNECT_S || 45)

const delivery = new Trend('delivery_ms', true)
const sent = new Counter('sent')
const received = new Counter('received_unique')
const lost = new Counter('lost')
const reconnects = new Counter('reconnects')

const MINUTES = Math.ceil(DURATION_S / 60)
const thresholds = { lost: ['count==0'], sent: ['count>0'], delivery_ms: ['p(99)<1000'] }
// Always-true per-minute thresholds keep per-minute latency submetrics for the summary (flatness).
for (let m = 0; m < MINUTES; m++) thresholds[`delivery_ms{minute:${m}}`] = ['p(99)>=0']

export const options = {
  scenarios: { pairs: { executor: 'per-vu-iterations', vus: PAIRS, iterations: 1, maxDuration: `${DURATION_S + 60}s`, exec: 'pair' } },
  thresholds,
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
}

export function setup() {
  return { start: Date.now() }
}

export function pair(data) {
  const p = seed.pairs[__VU - 1]
  const base = BASES[(__VU - 1) % BASES.length]
  const sentIds = new Set()
  const seen = new Set()
  let ws = null
  let stopping = false
  const connect = () => {
    ws = new WebSocket(`${base.replace('http', 'ws')}/v1/ws`)
    ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', api_key: p.b.apiKey, capabilities: ['ack'] }))
    ws.onmessage = (e) => {
      const f = JSON.parse(e.data)
      if (f.type !== 'message.new') return
      if (!seen.has(f.payload.client_msg_id)) {
        seen.add(f.payload.client_msg_id)
        received.add(1)
        const t = f.payload.content && f.payload.content.data && f.payload.content.data.t
        if (t) delivery.add(Date.now() - t, { minute: String(Math.min(MINUTES - 1, Math.floor((Date.now() - data.start) / 60000))) })
      }
      ws.send(JSON.stringify({ type: 'ack', message_id: f.payload.id }))
    }
    ws.onclose = () => {
      if (!stopping) {
        reconnects.add(1)
        setTimeout(connect, 200)
      }
    }
  }
  connect()
  let i = 0
  const sender = setInterval(() => {
    const id = `soak-${__VU}-${i++}`
    const r = http.post(`${base}/v1/messages`, JSON.stringify({ to: p.b.handle, client_msg_id: id, content: { text: 'soak', data: { t: Date.now() } } }), {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${p.a.apiKey}` },
    })
    if (r.status === 201) {
      sentIds.add(id)
      sent.add(1)
    }
  }, 1000 / PER_PAIR)
  const cycler = setInterval(() => ws && ws.close(), RECONNECT_S * 1000)
  setTimeout(() => {
    clearInterval(sender)
    clearInterval(cycler)
    // Let the last frames arrive (a final reconnect drains anything missed), then compare.
    setTimeout(() => {
      stopping = true
      let missing = 0
      for (const id of sentIds) if (!seen.has(id)) missing++
      lost.add(missing)
      ws.close()
    }, 8000)
  }, DURATION_S * 1000)
}

export function handleSummary(data) {
  const rows = ['| minute | delivery p50 ms | p99 ms |', '| ---: | ---: | ---: |']
  for (let m = 0; m < MINUTES; m++) {
    const t = data.metrics[`delivery_ms{minute:${m}}`]
    if (t) rows.push(`| ${m + 1} | ${t.values['p(50)'].toFixed(0)} | ${t.values['p(99)'].toFixed(0)} |`)
  }
  return summarize('soak', data, [
    ['sent (201)', 'sent', 'count'],
    ['received (unique)', 'received_unique', 'count'],
    ['lost', 'lost', 'count'],
    ['reconnects', 'reconnects', 'count'],
    ['delivery p50 ms', 'delivery_ms', 'p(50)'],
    ['delivery p99 ms', 'delivery_ms', 'p(99)'],
    ['send p99 ms', 'http_req_duration', 'p(99)'],
  ], `\nDelivery latency per minute (flat means no drift):\n\n${rows.join('\n')}\n`)
}
