import { describe, expect, test } from 'bun:test'
import { isReservedHandle, isWellFormedHandle, normalizeHandle, RESERVED_HANDLE_COUNT } from '../../src/lib/handles.ts'
import { deliveryIdFromPosition, newId, positionFromDeliveryId } from '../../src/lib/ids.ts'

describe('handles', () => {
  test('normalisation: URL-decode, strip one @, lowercase', () => {
    expect(normalizeHandle('%40Alice')).toBe('alice')
    expect(normalizeHandle('@Bob')).toBe('bob')
    expect(normalizeHandle('@@bob')).toBe('@bob')
    expect(normalizeHandle('carol')).toBe('carol')
    expect(normalizeHandle('%E0%A4%A')).toBe('%e0%a4%a')
  })

  test('shape rules of §1.11', () => {
    for (const ok of ['abc', 'a1b2', 'my-agent', 'a-b-c', 'x'.repeat(30)]) expect(isWellFormedHandle(ok)).toBe(true)
    for (const bad of ['ab', '1abc', '-abc', 'abc-', 'a--b', 'a_b', 'ABC', 'x'.repeat(31), 'a b']) expect(isWellFormedHandle(bad)).toBe(false)
  })

  test('reserved list covers routes, authority words, brands and literals', () => {
    for (const h of ['v1', 'api', 'register', 'agents', 'messages', 'groups', 'sync', 'ack', 'me', 'dashboard', 'admin', 'support', 'system', 'official', 'agentchat', 'openai', 'claude', 'null', 'test', 'chatfather']) {
      expect(isReservedHandle(h)).toBe(true)
    }
    expect(isReservedHandle('alice')).toBe(false)
    expect(RESERVED_HANDLE_COUNT).toBeGreaterThan(200)
  })
})

describe('ids', () => {
  test('prefix + 16 base64url chars', () => {
    expect(newId('agt')).toMatch(/^agt_[A-Za-z0-9_-]{16}$/)
    expect(newId('msg')).toMatch(/^msg_[A-Za-z0-9_-]{16}$/)
  })

  test('delivery ids encode their position and sort with it', () => {
    const a = deliveryIdFromPosition(9n)
    const b = deliveryIdFromPosition(10n)
    expect(a).toMatch(/^del_[0-9a-f]{32}$/)
    expect(a < b).toBe(true)
    expect(positionFromDeliveryId(b)).toBe(10n)
    expect(positionFromDeliveryId('del_xyz')).toBeNull()
    expect(positionFromDeliveryId('nope')).toBeNull()
  })
})
