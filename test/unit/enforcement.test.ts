import { expect, test } from 'bun:test'
import { verdict } from '../../src/modules/enforcement/service.ts'

test('enforcement thresholds of §16.1', () => {
  expect(verdict({ blocks24h: 14, blocks7d: 14, reports7d: 9 })).toBe('active')
  expect(verdict({ blocks24h: 15, blocks7d: 15, reports7d: 0 })).toBe('restricted')
  expect(verdict({ blocks24h: 0, blocks7d: 50, reports7d: 0 })).toBe('suspended')
  expect(verdict({ blocks24h: 0, blocks7d: 0, reports7d: 10 })).toBe('suspended')
  expect(verdict({ blocks24h: 20, blocks7d: 49, reports7d: 9 })).toBe('restricted')
})
