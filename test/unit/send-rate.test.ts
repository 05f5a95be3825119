import { expect, test } from 'bun:test'
import { SendRateLimiter } from '../../src/limits/send-rate.ts'
test('1-second buckets by wall-clock second, older seconds still counted', () => {
  const l = new SendRateLimiter()
  const t = 1_000_000_000_000
  for (let i = 0; i < 60; i++) expect(l.takeSync('a', 60, t + i).ok).toBe(true)
  expect(l.takeSync('a', 60, t + 999).ok).toBe(false)
  expect(l.takeSync('a', 60, t + 1000).ok).toBe(true)
  expect(l.takeSync('a', 60, t + 500).ok).toBe(false) // older second still counted
})
