// Proves 60 msg/s per agent: each agent is offered far more than 60 sends/s (constant arrival
// rate) for DURATION; the server's created_at of every accepted send is bucketed per wall-clock
// second, and a threshold per agent and second asserts at most 60. Every refusal must be 429
// RATE_LIMITED with Retry-After; nothing may fail in any other way. With several BASE_URLS
// (processes sharing Redis) the requests alternate between them.
import http from 'k6/http'
import { Counter, Rate } from 'k6/metrics'
import { summarize } from './lib/summary.js'

const seed = JSON.parse(open(__ENV.SEED_FILE))
const BASES = (__ENV.BASE_URLS || 'http://127.0.0.1:3000').split(',')
const AGENTS = Math.min(Number(__ENV.AGENTS || 4), seed.pairs.length)
const RATE = Number(__ENV.RATE || 90)
const DURATION_S = Number(__ENV.DURATION_S || 30)

const accepted = new Counter('accepted_per_agent_second')
const acceptedAll = new Counter('accepted')
const refusedOk = new Rate('refusals_well_formed')
const unexpected = new Counter('unexpected_responses')

const thresholds = {
  refusals_well_formed: ['rate==1'],
  unexpected_responses: ['count==0'],
  accepted: ['count>0'],
}
// One threshold per agent per second of the run (plus slack): at most 60 accepted.
for (let a = 0; a < AGENTS; a++) for (let s = 0; s <= DURATION_S + 5; s++) thresholds[`accepted_per_agent_second{agent:a${a},second:${s}}`] = ['count<=60']

const scenarios = {}
for (let a = 0; a < AGENTS; a++) {
  scenarios[`agent_${a}`] = {
    executor: 'constant-arrival-rate',
    rate: RATE,
    timeUnit: '1s',
    duration: `${DURATION_S}s`,
    preAllocatedVUs: 20,
    maxVUs: 60,
    exec: 'send',
    env: { AGENT: String(a) },
  }
}

export const options = { scenarios, thresholds, summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'] }

export function setup() {
  // Seconds are counted from the wall-clock second the test starts in.
  return { startSecond: Math.floor(Date.now() / 1000) }
}

let n = 0
export function send(data) {
  const a = Number(__ENV.AGENT)
  const pair = seed.pairs[a]
  const base = BASES[n % BASES.length]
  n++
  const res = http.post(
    `${base}/v1/messages`,
    JSON.stringify({ to: pair.b.handle, client_msg_id: `rl-${a}-${__VU}-${__ITER}-${Date.now()}`, content: { text: 'rate limit probe' } }),
    { headers: { 'content-type': 'application/json', authorization: `Bearer ${pair.a.apiKey}` }, responseCallback: http.expectedStatuses(201, 429) },
  )
  if (res.status === 201) {
    const second = Math.floor(Date.parse(res.json('created_at')) / 1000) - data.startSecond
    accepted.add(1, { agent: `a${a}`, second: String(second) })
    acceptedAll.add(1)
  } else if (res.status === 429) {
    const body = res.json()
    const retry = Number(res.headers['Retry-After'])
    refusedOk.add(body.code === 'RATE_LIMITED' && retry >= 1 && body.details && body.details.retry_after_ms > 0)
  } else {
    unexpected.add(1, { status: String(res.status) })
  }
}

export function handleSummary(data) {
  return summarize(`rate-limit${BASES.length > 1 ? '-2proc' : ''}`, data, [
    ['accepted sends', 'accepted', 'count'],
    ['refusals that were 429 RATE_LIMITED + Retry-After (rate)', 'refusals_well_formed', 'rate'],
    ['unexpected responses', 'unexpected_responses', 'count'],
    ['http p95 ms', 'http_req_duration', 'p(95)'],
    ['http p99 ms', 'http_req_duration', 'p(99)'],
  ])
}
