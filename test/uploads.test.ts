import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { createHash, randomBytes } from 'node:crypto'
import { api, backends, registerAgent, rejection, startTestServer, type Registered, type TestServer } from './harness.ts'

// Real servers on a busy 2-core machine: see test/preload.ts.
setDefaultTimeout(90_000)

/*
 * Uploads and attachments (contract §14) through the official SDK where it has a method:
 * announce → PUT the bytes to the signed URL → send with content.attachment_id → the recipient
 * downloads the same bytes; and every refusal on the way.
 */

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

describe.each(await backends())('uploads and attachments on %s', (backend) => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer(backend)
  })
  afterAll(async () => {
    await s?.stop()
  })

  async function upload(from: Registered, target: { to?: string; conversation_id?: string }, bytes: Uint8Array, content_type = 'application/pdf') {
    const up = await from.client.createUpload({ ...target, filename: 'report final.pdf', content_type: content_type as never, size: bytes.length, sha256: sha(bytes) })
    const put = await fetch(up.upload_url, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } })
    return { up, put }
  }

  async function download(who: Registered, id: string) {
    const url = await who.client.getAttachmentDownloadUrl(id)
    const res = await fetch(url)
    return { url, res, bytes: new Uint8Array(await res.arrayBuffer()) }
  }

  test('upload → send with the attachment → the recipient downloads the same bytes; a stranger gets 404', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const bytes = new Uint8Array(randomBytes(3 * 1024 * 1024 + 17))
    const { up, put } = await upload(a, { to: b.handle }, bytes)
    expect(up.attachment_id).toMatch(/^att_/)
    expect(up.expires_in).toBe(7200)
    expect(up.upload_url.startsWith(s.url) || up.upload_url.startsWith('http://localhost')).toBe(true)
    expect(put.status).toBe(200)
    expect(await put.json()).toEqual({ attachment_id: up.attachment_id, size: bytes.length, sha256: sha(bytes) })
    const sent = await a.client.sendMessage({ to: b.handle, type: 'file', content: { attachment_id: up.attachment_id, text: 'the report' } })
    expect(sent.message.content).toMatchObject({ attachment_id: up.attachment_id })
    const got = await download(b, up.attachment_id)
    expect(got.res.status).toBe(200)
    expect(sha(got.bytes)).toBe(sha(bytes))
    expect(got.res.headers.get('content-type')).toBe('application/pdf')
    expect(got.res.headers.get('content-disposition')).toBe(`attachment; filename*=UTF-8''report%20final.pdf`)
    expect(got.res.headers.get('x-content-type-options')).toBe('nosniff')
    expect((await download(a, up.attachment_id)).res.status).toBe(200) // the uploader
    // A stranger: 404, whether through the SDK or the raw route.
    expect((await rejection(c.client.getAttachmentDownloadUrl(up.attachment_id))).status).toBe(404)
    const raw = await api(s, 'GET', `/v1/attachments/${up.attachment_id}`, { key: c.apiKey })
    expect([raw.status, raw.json.code]).toEqual([404, 'NOT_FOUND'])
    // The 302 itself, and the signed URL's protection.
    const redirect = await fetch(`${s.url}/v1/attachments/${up.attachment_id}`, { headers: { authorization: `Bearer ${b.apiKey}` }, redirect: 'manual' })
    expect(redirect.status).toBe(302)
    const location = new URL(redirect.headers.get('location')!)
    const expires = Number(location.searchParams.get('expires'))
    expect(expires - Date.now() / 1000).toBeGreaterThan(290)
    expect(expires - Date.now() / 1000).toBeLessThanOrEqual(301)
    const forged = new URL(location)
    forged.searchParams.set('expires', String(expires + 3600))
    expect((await fetch(forged.href.replace(forged.origin, s.url))).status).toBe(403)
    expect((await fetch(`${s.url}/v1/files/${up.attachment_id}`)).status).toBe(403)
  })

  test('a wrong hash, a short body, an oversize body and a bad signature are refused and nothing is kept', async () => {
    const [a, b] = [await registerAgent(s), await registerAgent(s)]
    const bytes = new Uint8Array(randomBytes(4096))
    const up = await a.client.createUpload({ to: b.handle, filename: 'x.bin', content_type: 'application/json', size: bytes.length, sha256: sha(bytes) })
    const other = new Uint8Array(randomBytes(4096))
    const wrong = await fetch(up.upload_url, { method: 'PUT', body: other })
    expect(wrong.status).toBe(400)
    expect(((await wrong.json()) as { details: unknown }).details).toMatchObject({ field: 'sha256' })
    expect((await rejection(a.client.getAttachmentDownloadUrl(up.attachment_id))).status).toBe(404)
    const send = await rejection(a.client.sendMessage({ to: b.handle, type: 'file', content: { attachment_id: up.attachment_id } }))
    expect([send.status, send.code]).toEqual([404, 'ATTACHMENT_NOT_FOUND'])
    const short = await fetch(up.upload_url, { method: 'PUT', body: bytes.subarray(0, 100) })
    expect(short.status).toBe(400)
    expect(((await short.json()) as { details: unknown }).details).toMatchObject({ field: 'size', received: 100 })
    const long = await fetch(up.upload_url, { method: 'PUT', body: new Uint8Array(8192) })
    expect(long.status).toBe(413)
    const tampered = up.upload_url.replace(/sig=[^&]+/, 'sig=AAAA')
    expect((await fetch(tampered, { method: 'PUT', body: bytes })).status).toBe(403)
    // After all that, the right bytes still go in, once.
    expect((await fetch(up.upload_url, { method: 'PUT', body: bytes })).status).toBe(200)
    const again = await fetch(up.upload_url, { method: 'PUT', body: bytes })
    expect([again.status, ((await again.json()) as { code: string }).code]).toEqual([409, 'ALREADY_UPLOADED'])
    expect(sha((await download(b, up.attachment_id)).bytes)).toBe(sha(bytes))
  })

  test('announcements: MIME outside the list, size bounds, hash shape, exactly one target, unknown, self and blocked recipients', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const ok = { to: b.handle, filename: 'f.txt', content_type: 'text/plain', size: 10, sha256: 'a'.repeat(64) }
    const cases: [Record<string, unknown>, number, string][] = [
      [{ ...ok, content_type: 'text/html' }, 400, 'VALIDATION_ERROR'],
      [{ ...ok, content_type: 'application/x-msdownload' }, 400, 'VALIDATION_ERROR'],
      [{ ...ok, size: 26_214_401 }, 400, 'VALIDATION_ERROR'],
      [{ ...ok, size: 0 }, 400, 'VALIDATION_ERROR'],
      [{ ...ok, sha256: 'A'.repeat(64) }, 400, 'VALIDATION_ERROR'],
      [{ ...ok, filename: '' }, 400, 'VALIDATION_ERROR'],
      [{ ...ok, conversation_id: 'grp_x' }, 400, 'VALIDATION_ERROR'],
      [{ ...ok, to: undefined }, 400, 'VALIDATION_ERROR'],
      [{ ...ok, to: 'nobody-at-all-here' }, 404, 'AGENT_NOT_FOUND'],
      [{ ...ok, to: a.handle }, 400, 'VALIDATION_ERROR'],
      [{ ...ok, to: undefined, conversation_id: 'grp_doesnotexist0000' }, 404, 'GROUP_NOT_FOUND'],
    ]
    for (const [body, status, code] of cases) {
      const r = await api(s, 'POST', '/v1/uploads', { key: a.apiKey, body })
      expect([JSON.stringify(body), r.status, r.json?.code]).toEqual([JSON.stringify(body), status, code])
    }
    await c.client.blockAgent(a.handle)
    const blocked = await api(s, 'POST', '/v1/uploads', { key: a.apiKey, body: { ...ok, to: c.handle } })
    expect([blocked.status, blocked.json.code]).toEqual([403, 'BLOCKED'])
    expect((await api(s, 'POST', '/v1/uploads', { body: ok })).status).toBe(401)
  })

  test('scope at send: someone else’s attachment is not found, one scoped elsewhere is the wrong scope', async () => {
    const [a, b, c] = [await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const bytes = new Uint8Array(randomBytes(256))
    const { up } = await upload(a, { to: b.handle }, bytes)
    const foreign = await rejection(c.client.sendMessage({ to: b.handle, type: 'file', content: { attachment_id: up.attachment_id } }))
    expect([foreign.status, foreign.code]).toEqual([404, 'ATTACHMENT_NOT_FOUND'])
    const unknown = await rejection(a.client.sendMessage({ to: b.handle, type: 'file', content: { attachment_id: 'att_nothing000000000' } }))
    expect(unknown.code).toBe('ATTACHMENT_NOT_FOUND')
    const elsewhere = await rejection(a.client.sendMessage({ to: c.handle, type: 'file', content: { attachment_id: up.attachment_id } }))
    expect([elsewhere.status, elsewhere.code]).toEqual([400, 'ATTACHMENT_WRONG_SCOPE'])
    const { group } = await a.client.createGroup({ name: 'Files' })
    const inGroup = await rejection(a.client.sendMessage({ conversation_id: group.id, type: 'file', content: { attachment_id: up.attachment_id } }))
    expect(inGroup.code).toBe('ATTACHMENT_WRONG_SCOPE')
  })

  test('group attachments: members (later joiners too) download, others 404, former members 410 after deletion', async () => {
    const [a, b, c, d] = [await registerAgent(s), await registerAgent(s), await registerAgent(s), await registerAgent(s)]
    const { group } = await a.client.createGroup({ name: 'Shared', member_handles: [b.handle] })
    await b.client.acceptGroupInvite((await b.client.listGroupInvites()).find((i) => i.group_id === group.id)!.id)
    const bytes = new Uint8Array(randomBytes(1000))
    const { up, put } = await upload(a, { conversation_id: group.id }, bytes, 'image/png')
    expect(put.status).toBe(200)
    await a.client.sendMessage({ conversation_id: group.id, type: 'file', content: { attachment_id: up.attachment_id } })
    expect(sha((await download(b, up.attachment_id)).bytes)).toBe(sha(bytes))
    expect((await rejection(c.client.getAttachmentDownloadUrl(up.attachment_id))).status).toBe(404)
    await a.client.addGroupMember(group.id, c.handle)
    await c.client.acceptGroupInvite((await c.client.listGroupInvites()).find((i) => i.group_id === group.id)!.id)
    expect(sha((await download(c, up.attachment_id)).bytes)).toBe(sha(bytes))
    const outsider = await api(s, 'POST', '/v1/uploads', { key: d.apiKey, body: { conversation_id: group.id, filename: 'x', content_type: 'text/plain', size: 1, sha256: 'a'.repeat(64) } })
    expect([outsider.status, outsider.json.code]).toEqual([404, 'GROUP_NOT_FOUND'])
    await a.client.deleteGroup(group.id)
    const gone = await rejection(b.client.getAttachmentDownloadUrl(up.attachment_id))
    expect([gone.status, gone.code]).toEqual([410, 'GROUP_DELETED'])
    expect((await rejection(d.client.getAttachmentDownloadUrl(up.attachment_id))).status).toBe(404)
  })
})
