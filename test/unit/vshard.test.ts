import { expect, test } from 'bun:test'
import { VSHARDS, vshardOf } from '../../src/shard/vshard.ts'

test('virtual shards are stable and spread handles evenly', () => {
  expect(vshardOf('alice')).toBe(vshardOf('alice'))
  // Known values pin the hash: changing it would move every agent to another shard.
  expect([vshardOf('alice'), vshardOf('bob')]).toEqual([999, 212])
  const counts = new Array(VSHARDS).fill(0)
  for (let i = 0; i < 100_000; i++) counts[vshardOf(`agent-${i}`)]++
  const expected = 100_000 / VSHARDS
  for (const c of counts) {
    expect(c).toBeGreaterThan(expected * 0.6)
    expect(c).toBeLessThan(expected * 1.4)
  }
})
