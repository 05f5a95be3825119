// Proves the backlog limits: many senders fill one offline recipient's inbox. Thresholds assert
// that X-Backlog-Warning appears once 5,000 are stored (and never below), that exactly 10,000 sends
// are accepted before RECIPIENT_BACKLOGGED starts, that every refusal carries the contract's
// details, and that after the recipient drains (sync + ack) sends are accepted again.
import http from 'k6/http'
import { check } from 'k6'
import { Counter, Rate } from 'k6/metrics'
import { summarize } from './lib/summary.js'

const seed = JSON.parse(open(__ENV.SEED_FILE))
const BASES = (__ENV.BASE_URLS || 'http://127.0.0.1:3000').split(',')
const CAP = 10000
const EXTRA = Number(__ENV.EXTRA || 300)
const recipient = seed.recipient
const senders = seed.senders

const accepted = new Counter('accepted')
const warnings = new Counter('backlog_warnings')
const badWarnings = new Counter('warnings_below_5000')
const refusals = new Counter('backlogged_refusals')
const refusalDetailsOk = new Rate('refusal_details_ok')
const unexpected = new Counter('unexpected_responses')
const resumed = new Rate('accepted_after_drain')
const drained = new Counter('drained_envelopes')

export const options = {
  scenarios: {
    fill: { executor: 'shared-iterations', vus: 50, iterations: CAP + EXTRA, maxDuration: '3m', exec: 'fill' },
  },
  thresholds: {
    accepted: [`count==${CAP}`],
    backlogged_refusals: [`count==${EXTRA}`],
    refusal_details_ok: ['rate==1'],
    // Exactly the sends that found 5,000–9,999 already stored carry the warning.
    backlog_warnings: ['count==5000'],
    warnings_below_5000: ['count==0'],
    unexpected_responses: ['count==0'],
    accepted_after_drain: ['rate==1'],
    drained_envelopes: [`count==${CAP}`],
  },
}

function post(i) {
  const s = senders[i % senders.length]
  return http.post(
    `${BASES[i % BASES.length]}/v1/messages`,
    JSON.stringify({ to: recipient.handle, client_msg_id: `bl-${i}`, content: { text: 'fill' } }),
    { headers: { 'content-type': 'application/json', authorization: `Bearer ${s.apiKey}` }, responseCallback: http.expectedStatuses(201, 429) },
  )
}

export function fill() {
  // Each sender sends at most every senders.length-th request: far under 60/s each.
  const i = __ITER + (__VU - 1) * 1000000
  let res = post(i)
  while (res.status === 429 && res.json('code') === 'RATE_LIMITED') res = post(i)
  if (res.status === 201) {
    accepted.add(1)
    const w = res.headers['X-Backlog-Warning']
    if (w) {
      warnings.add(1)
      const n = Number(w.split('=')[1])
      if (!(n >= 5000) || w.split('=')[0] !== recipient.handle) badWarnings.add(1)
    }
  } else if (res.status === 429 && res.json('code') === 'RECIPIENT_BACKLOGGED') {
    refusals.add(1)
    const d = res.json('details')
    refusalDetailsOk.add(d && d.recipient_handle === recipient.handle && d.undelivered_count === CAP)
  } else {
    unexpected.add(1, { status: String(res.status) })
  }
}

/** After every fill request finished: the recipient drains (sync pages + one ack), then a send works again. */
export function teardown() {
  let after = ''
  let last = ''
  for (;;) {
    const page = http.get(`${BASES[0]}/v1/messages/sync?limit=500${after ? `&after=${after}` : ''}`, { headers: { authorization: `Bearer ${recipient.apiKey}` } })
    const rows = page.json()
    if (!Array.isArray(rows) || rows.length === 0) break
    drained.add(rows.length)
    last = rows[rows.length - 1].delivery_id
    after = last
  }
  const ack = http.post(`${BASES[0]}/v1/messages/sync/ack`, JSON.stringify({ last_delivery_id: last }), {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${recipient.apiKey}` },
  })
  check(ack, { 'ack moved every envelope': (r) => r.json('acked') === CAP })
  const again = http.post(
    `${BASES[0]}/v1/messages`,
    JSON.stringify({ to: recipient.handle, client_msg_id: 'after-drain', content: { text: 'after drain' } }),
    { headers: { 'content-type': 'application/json', authorization: `Bearer ${senders[1].apiKey}` } },
  )
  resumed.add(again.status === 201)
}

export function handleSummary(data) {
  return summarize('backlog', data, [
    ['accepted before the cap', 'accepted', 'count'],
    ['X-Backlog-Warning seen', 'backlog_warnings', 'count'],
    ['warnings below 5,000', 'warnings_below_5000', 'count'],
    ['RECIPIENT_BACKLOGGED refusals', 'backlogged_refusals', 'count'],
    ['refusals with the contract details (rate)', 'refusal_details_ok', 'rate'],
    ['envelopes drained by sync', 'drained_envelopes', 'count'],
    ['accepted after drain + ack (rate)', 'accepted_after_drain', 'rate'],
  ])
}
