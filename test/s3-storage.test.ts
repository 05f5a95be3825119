import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { S3Client, type Subprocess } from 'bun'
import sharp from 'sharp'
import { freePort } from '../load/spawn-server.ts'
import { backends, registerAgent, startTestServer, type TestServer } from './harness.ts'

// A real S3-compatible server (SeaweedFS) and the real server on a busy 2-core machine.
setDefaultTimeout(120_000)

/*
 * Uploads and avatars on S3 storage, against a real S3-compatible server: SeaweedFS's S3 gateway
 * (`weed`, built from the Go module proxy by .ci/run). Skipped, saying so, when `weed` is absent.
 */

// S3_TESTS=off: CI runs this file on its own once SeaweedFS is built (.ci/run).
const WEED = process.env.S3_TESTS === 'off' ? undefined : [process.env.WEED_BIN, join(process.env.HOME ?? '/root', 'go/bin/weed'), '/usr/local/bin/weed'].find((p) => p && existsSync(p))
if (!WEED && process.env.S3_TESTS !== 'off') console.warn('[tests] weed (SeaweedFS) not found: skipping the S3 storage tests')
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

describe.if(Boolean(WEED) && (await backends()).includes('postgres'))('storage on S3 (SeaweedFS)', () => {
  let weed: Subprocess
  let s: TestServer
  let s3: S3Client
  const dir = mkdtempSync(join(tmpdir(), 'ac-weed-'))
  const port = freePort()
  const endpoint = `http://127.0.0.1:${port}`
  const bucket = 'agentchat-test'
  const creds = { accessKeyId: 'test', secretAccessKey: 'test-secret', region: 'us-east-1' }
  beforeAll(async () => {
    const master = freePort()
    weed = Bun.spawn(
      [WEED!, 'server', `-dir=${dir}`, '-s3', `-s3.port=${port}`, `-master.port=${master}`, `-volume.port=${freePort()}`, `-filer.port=${freePort()}`, '-ip=127.0.0.1', '-volume.max=5', '-master.volumeSizeLimitMB=64'],
      { stdout: 'ignore', stderr: 'ignore' },
    )
    // The gateway answers once master, volume and filer are up; then the bucket is created.
    // On a loaded machine the first start can take a minute or more: wait up to three, then say so.
    let ready = false
    for (let i = 0; i < 720 && !ready; i++) {
      try {
        const r = await fetch(`${endpoint}/${bucket}`, { method: 'PUT' })
        ready = r.status === 200 || r.status === 409
      } catch {}
      if (!ready) await Bun.sleep(250)
    }
    if (!ready) throw new Error(`SeaweedFS's S3 gateway did not come up on ${endpoint} within 180 s`)
    s3 = new S3Client({ ...creds, endpoint, bucket })
    s = await startTestServer('postgres', { S3_BUCKET: bucket, S3_ENDPOINT: endpoint, S3_REGION: creds.region, S3_ACCESS_KEY_ID: creds.accessKeyId, S3_SECRET_ACCESS_KEY: creds.secretAccessKey })
  }, 240_000)
  afterAll(async () => {
    await s?.stop()
    weed?.kill()
    await weed?.exited
    rmSync(dir, { recursive: true, force: true })
  })

  test('an upload streams into the bucket and downloads back byte for byte; a wrong hash leaves no object', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const bytes = new Uint8Array(randomBytes(12 * 1024 * 1024 + 5)) // several multipart parts
    const up = await a.client.createUpload({ to: b.handle, filename: 'big.mp4', content_type: 'video/mp4', size: bytes.length, sha256: sha(bytes) })
    expect((await fetch(up.upload_url, { method: 'PUT', body: bytes })).status).toBe(200)
    expect(await s3.file(`attachments/${up.attachment_id}`).exists()).toBe(true)
    expect((await s3.file(`attachments/${up.attachment_id}`).stat()).size).toBe(bytes.length)
    const got = new Uint8Array(await (await fetch(await b.client.getAttachmentDownloadUrl(up.attachment_id))).arrayBuffer())
    expect(sha(got)).toBe(sha(bytes))
    const small = new Uint8Array(randomBytes(1000))
    const bad = await a.client.createUpload({ to: b.handle, filename: 'x.txt', content_type: 'text/plain', size: small.length, sha256: sha(small) })
    expect((await fetch(bad.upload_url, { method: 'PUT', body: new Uint8Array(randomBytes(1000)) })).status).toBe(400)
    expect(await s3.file(`attachments/${bad.attachment_id}`).exists()).toBe(false)
  })

  test('avatars are stored in the bucket and served from it; a replaced one is deleted there', async () => {
    const a = await registerAgent(s)
    const img = (c: number) => sharp({ create: { width: 256, height: 256, channels: 3, background: { r: c, g: 100, b: 50 } } }).png().toBuffer()
    const first = await a.client.setAvatar(a.handle, new Uint8Array(await img(10)))
    expect(await s3.file(`avatars/${first.avatar_key}`).exists()).toBe(true)
    const meta = await sharp(new Uint8Array(await (await fetch(first.avatar_url)).arrayBuffer())).metadata()
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 512, 512])
    const second = await a.client.setAvatar(a.handle, new Uint8Array(await img(200)))
    expect(await s3.file(`avatars/${second.avatar_key}`).exists()).toBe(true)
    expect(await s3.file(`avatars/${first.avatar_key}`).exists()).toBe(false)
  })
})
