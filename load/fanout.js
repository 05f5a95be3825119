// Groups: every member on a WebSocket (ack), messages into several groups at once (a group takes
// at most 20/s); delivered frames/s and send→frame latency.
import http from 'k6/http'
import exec from 'k6/execution'
import { WebSocket } from 'k6/websockets'
import { setTimeout } from 'k6/timers'
import { Counter, Trend } from 'k6/metrics'
import { summarize } from './lib/summary.js'

const seed = JSON.parse(open(__ENV.SEED_FILE))
const BASES = (__ENV.BASE_URLS || 'http://127.0.0.1:3000').split(',')
const PER_GROUP = Number(__ENV.PER_GROUP_RATE || 10)
const DURATION_S = Number(__ENV.DURATION_S || 30)
const WARMUP_S = 5
const MEMBERS = seed.members.length
const GROUPS = seed.groups.length

const delivery = new Trend('delivery_ms', true)
const frames = new Counter('delivered_frames')
const accepted = new Counter('accepted')

export const options = {
  scenarios: {
    members: { executor: 'per-vu-iterations', vus: MEMBERS, iterations: 1, maxDuration: `${DURATION_S + WARMUP_S + 20}s`, exec: 'member' },
    senders: {
      executor: 'constant-arrival-rate',
      startTime: `${WARMUP_S}s`,
      rate: PER_GROUP * GROUPS,
      timeUnit: '1s',
      duration: `${DURATION_S}s`,
      preAllocatedVUs: 50,
      maxVUs: 400,
      exec: 'send',
    },
  },
  thresholds: { delivered_frames: ['count>0'], delivery_ms: ['p(99)<200'] },
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
}

export function member() {
  const m = seed.members[__VU - 1]
  const ws = new WebSocket(`${BASES[(__VU - 1) % BASES.length].replace('http', 'ws')}/v1/ws`)
  ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', api_key: m.apiKey, capabilities: ['ack'] }))
  ws.onmessage = (e) => {
    const f = JSON.parse(e.data)
    if (f.type !== 'message.new') return
    const t = f.payload.content && f.payload.content.data && f.payload.content.data.t
    if (t) delivery.add(Date.now() - t)
    frames.add(1)
    ws.send(JSON.stringify({ type: 'ack', message_id: f.payload.id }))
  }
  setTimeout(() => ws.close(), (DURATION_S + WARMUP_S + 8) * 1000)
}

export function send() {
  const i = exec.scenario.iterationInTest
  const g = i % GROUPS
  const sender = seed.members[(g % (MEMBERS - 1)) + 1]
  const res = http.post(
    `${BASES[i % BASES.length]}/v1/messages`,
    JSON.stringify({ conversation_id: seed.groups[g], client_msg_id: `fo-${i}`, content: { text: 'fan-out', data: { t: Date.now() } } }),
    { headers: { 'content-type': 'application/json', authorization: `Bearer ${sender.apiKey}` } },
  )
  if (res.status === 201) accepted.add(1)
}

export function handleSummary(data) {
  const framesPerS = data.metrics.delivered_frames ? data.metrics.delivered_frames.values.count / DURATION_S : 0
  return summarize('fanout', data, [
    ['messages into groups', 'accepted', 'count'],
    ['delivered frames', 'delivered_frames', 'count'],
    ['delivery p50 ms', 'delivery_ms', 'p(50)'],
    ['delivery p99 ms', 'delivery_ms', 'p(99)'],
    ['send p99 ms', 'http_req_duration', 'p(99)'],
  ], `\n${GROUPS} groups × ${MEMBERS} members, ${PER_GROUP} msgs/s per group: about ${framesPerS.toFixed(0)} delivered frames/s.\n`)
}
