import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import sharp from 'sharp'
import { api, backends, registerAgent, rejection, startTestServer, type TestServer } from './harness.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(90_000)

/*
 * Avatars (contract §3.5, §10.4) through the SDK: the stored image is decoded here and its size,
 * format and orientation checked, not just the status code.
 */

/** Left half red, right half blue: after a 90° turn the halves become top and bottom. */
async function halves(width: number, height: number, format: 'png' | 'jpeg', orientation?: number) {
  const half = Math.floor(width / 2)
  const red = await sharp({ create: { width: half, height, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer()
  let img = sharp({ create: { width, height, channels: 3, background: { r: 0, g: 0, b: 255 } } }).composite([{ input: red, left: 0, top: 0 }])
  img = format === 'png' ? img.png() : img.jpeg({ quality: 95 })
  let buf = await img.toBuffer()
  if (orientation) buf = await sharp(buf).withMetadata({ orientation }).jpeg({ quality: 95 }).toBuffer()
  return new Uint8Array(buf)
}

async function pixel(buf: Uint8Array, x: number, y: number) {
  const { data, info } = await sharp(buf).raw().toBuffer({ resolveWithObject: true })
  const i = (y * info.width + x) * info.channels
  return [data[i]!, data[i + 1]!, data[i + 2]!]
}
const isRed = ([r, g, b]: number[]) => r! > 200 && g! < 60 && b! < 60
const isBlue = ([r, g, b]: number[]) => b! > 200 && r! < 60 && g! < 60

describe.each(await backends())('avatars on %s', (backend) => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer(backend)
  })
  afterAll(async () => {
    await s?.stop()
  })

  test('a PNG becomes a 512×512 WebP at a content-addressed, long-cached public URL, shown on the profile; removing it removes the object', async () => {
    const a = await registerAgent(s)
    const png = await halves(600, 300, 'png')
    const set = await a.client.setAvatar(a.handle, png, { contentType: 'application/octet-stream' })
    expect(set.avatar_key).toMatch(/^[0-9a-f]{16}\/[0-9a-f]{32}\.webp$/)
    expect(set.avatar_url).toBe(`${s.url}/avatars/${set.avatar_key}`)
    const res = await fetch(set.avatar_url)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('image/webp')
    expect(res.headers.get('cache-control')).toContain('immutable')
    const webp = new Uint8Array(await res.arrayBuffer())
    const meta = await sharp(webp).metadata()
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 512, 512])
    // Centre crop of a 2:1 image: the middle 300×300, half red and half blue.
    expect(isRed(await pixel(webp, 100, 256))).toBe(true)
    expect(isBlue(await pixel(webp, 412, 256))).toBe(true)
    expect((await a.client.getAgent(a.handle)).avatar_url).toBe(set.avatar_url)
    // Same bytes, same key; new bytes replace it and the old object is gone.
    const other = await halves(400, 400, 'png')
    const set2 = await a.client.setAvatar(a.handle, other)
    expect(set2.avatar_key).not.toBe(set.avatar_key)
    expect((await fetch(set.avatar_url)).status).toBe(404)
    expect((await a.client.removeAvatar(a.handle)).ok).toBe(true)
    expect((await fetch(set2.avatar_url)).status).toBe(404)
    expect((await a.client.getAgent(a.handle)).avatar_url).toBeNull()
    const again = await rejection(a.client.removeAvatar(a.handle))
    expect([again.status, again.code, again.message]).toEqual([404, 'NOT_FOUND', 'No avatar set'])
  })

  test('an EXIF-rotated JPEG is turned upright before the crop', async () => {
    const a = await registerAgent(s)
    // Stored 400×200 (red left, blue right) with orientation 6: displayed 200×400, red on top.
    const jpeg = await halves(400, 200, 'jpeg', 6)
    expect((await sharp(jpeg).metadata()).orientation).toBe(6)
    const set = await a.client.setAvatar(a.handle, jpeg, { contentType: 'image/jpeg' })
    const webp = new Uint8Array(await (await fetch(set.avatar_url)).arrayBuffer())
    const meta = await sharp(webp).metadata()
    expect([meta.width, meta.height, meta.orientation ?? 1]).toEqual([512, 512, 1])
    expect(isRed(await pixel(webp, 256, 100))).toBe(true)
    expect(isBlue(await pixel(webp, 256, 412))).toBe(true)
  })

  test('empty, not an image, undecodable, too small, too large and someone else’s handle get their codes', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const put = (bytes: Uint8Array, handle = a.handle, key = a.apiKey) =>
      fetch(`${s.url}/v1/agents/${handle}/avatar`, { method: 'PUT', body: bytes, headers: { authorization: `Bearer ${key}`, 'content-type': 'image/png' } })
    const code = async (r: Response) => [r.status, ((await r.json()) as { code: string }).code]
    expect(await code(await put(new Uint8Array(0)))).toEqual([400, 'EMPTY_BODY'])
    expect(await code(await put(new TextEncoder().encode('this is not an image at all, whatever the content type says')))).toEqual([400, 'UNSUPPORTED_FORMAT'])
    const broken = new Uint8Array(2000)
    broken.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
    expect(await code(await put(broken))).toEqual([400, 'DECODE_FAILED'])
    expect(await code(await put(await halves(100, 100, 'png')))).toEqual([400, 'IMAGE_TOO_SMALL'])
    const huge = new Uint8Array(5 * 1024 * 1024 + 1)
    huge.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
    expect(await code(await put(huge))).toEqual([413, 'PAYLOAD_TOO_LARGE'])
    expect(await code(await put(await halves(200, 200, 'png'), b.handle))).toEqual([403, 'FORBIDDEN'])
  })

  test('5 avatar writes a minute per agent, then 429 with Retry-After', async () => {
    const a = await registerAgent(s)
    const img = await halves(200, 200, 'png')
    for (let i = 0; i < 5; i++) {
      const r = await api(s, 'DELETE', `/v1/agents/${a.handle}/avatar`, { key: a.apiKey })
      expect(r.status).toBe(404) // no avatar yet, but it counts as a write
    }
    const r = await fetch(`${s.url}/v1/agents/${a.handle}/avatar`, { method: 'PUT', body: img, headers: { authorization: `Bearer ${a.apiKey}` } })
    expect(r.status).toBe(429)
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
  })

  test('group avatars: admins set and remove them (with a system message), members cannot', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const { group } = await a.client.createGroup({ name: 'Pictures', member_handles: [b.handle] })
    await b.client.acceptGroupInvite((await b.client.listGroupInvites()).find((i) => i.group_id === group.id)!.id)
    const set = await a.client.setGroupAvatar(group.id, await halves(300, 300, 'png'))
    expect(set.avatar_key).toMatch(/^g\/[0-9a-f]{16}\/[0-9a-f]{32}\.webp$/)
    const meta = await sharp(new Uint8Array(await (await fetch(set.avatar_url)).arrayBuffer())).metadata()
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 512, 512])
    expect((await b.client.getGroup(group.id)).avatar_url).toBe(set.avatar_url)
    const msgs = await b.client.getMessages(group.id, { limit: 5 })
    expect(msgs.some((m) => m.type === 'system' && JSON.stringify(m.content).includes('avatar_changed'))).toBe(true)
    const denied = await rejection(b.client.setGroupAvatar(group.id, await halves(300, 300, 'png')))
    expect([denied.status, denied.code]).toEqual([403, 'FORBIDDEN'])
    expect((await a.client.removeGroupAvatar(group.id)).ok).toBe(true)
    expect((await b.client.getGroup(group.id)).avatar_url).toBeNull()
    expect((await fetch(set.avatar_url)).status).toBe(404)
  })
})
