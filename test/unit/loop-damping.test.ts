import { afterAll, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { MemoryLoopDamper, RedisLoopDamper, type LoopDamper } from '../../src/limits/loop-damping.ts'
import { createLogger } from '../../src/lib/log.ts'
import { TEST_REDIS_URL } from '../harness.ts'

/*
 * The two loop counters (in memory, and the Lua script in Redis) give the same verdicts for the
 * same script of turns: pairs, repeats, a third speaker, the window sliding, one first refusal.
 */

const redis = new Redis(TEST_REDIS_URL)
afterAll(() => redis.disconnect())

async function script(d: LoopDamper, conv: string) {
  const t0 = 1_800_000_000_000
  const out: string[] = []
  const step = async (who: string, at: number) => {
    const v = await d.turn(conv, who, 3, 10_000, `${who}-${at}`, t0 + at)
    out.push(`${who}:${v.ok ? 'ok' : `no(${v.turns},${v.retryAfterMs},${v.firstRefusal ? 'first' : 'again'},${v.peerId})`}:${v.turns}`)
  }
  await step('a', 0) // turn 1
  await step('a', 10) // same speaker: not a turn
  await step('b', 20) // 2
  await step('a', 30) // 3
  await step('b', 40) // refused, first
  await step('b', 50) // refused again
  await step('c', 60) // third speaker: count restarts (pair a–c)
  await step('a', 70) // 2
  await step('c', 80) // 3
  await step('a', 90) // refused
  await step('a', 10_061) // c's turn at 60 has left the window: admitted
  return out
}

test('memory and Redis loop counters agree', async () => {
  const conv = `conv_unit_${Date.now()}`
  const mem = await script(new MemoryLoopDamper(), conv)
  const red = await script(new RedisLoopDamper(redis, createLogger('silent')), conv)
  expect(mem).toEqual(red)
  expect(mem).toEqual([
    'a:ok:1',
    'a:ok:1',
    'b:ok:2',
    'a:ok:3',
    'b:no(3,9960,first,a):3',
    'b:no(3,9950,again,a):3',
    'c:ok:1',
    'a:ok:2',
    'c:ok:3',
    'a:no(3,9970,first,c):3',
    'a:ok:3',
  ])
})
