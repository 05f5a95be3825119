import { describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { ConfigError, configMarkdownTable, loadConfig } from '../../src/config.ts'

describe('config', () => {
  test('defaults', () => {
    const c = loadConfig({})
    expect(c.port).toBe(3000)
    expect(c.dataDir).toBe('./data')
    expect(c.mailDir).toBe('data/mail')
    expect(c.databaseUrl).toBeUndefined()
    expect(c.redisUrl).toBeUndefined()
    expect(c.ipRateLimits).toBe(true)
    expect(c.publicUrl).toBe('http://localhost:3000')
    expect(c.shards).toBeGreaterThanOrEqual(1)
  })

  test('fails fast naming the wrong variable', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(ConfigError)
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/)
    expect(() => loadConfig({ IP_RATE_LIMITS: 'maybe' })).toThrow(/IP_RATE_LIMITS/)
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x' })).toThrow(/DATABASE_URL/)
  })

  test('parses values', () => {
    const c = loadConfig({ PORT: '8080', IP_RATE_LIMITS: 'off', TRUSTED_PROXIES: '10.0.0.1, 10.0.0.2', DATA_DIR: '/srv/ac' })
    expect(c.port).toBe(8080)
    expect(c.ipRateLimits).toBe(false)
    expect([...c.trustedProxies]).toEqual(['10.0.0.1', '10.0.0.2'])
    expect(c.mailDir).toBe('/srv/ac/mail')
  })

  test('the README configuration table is the generated one', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    expect(readme).toContain(configMarkdownTable())
  })
})
