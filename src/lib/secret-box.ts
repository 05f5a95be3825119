import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto'
import { safeEqualHex } from './crypto.ts'
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Secrets the server must use again (webhook signing secrets) cannot be hashed like API keys, so
 * they are stored encrypted: AES-256-GCM, `v1:<iv>:<tag>:<ciphertext>` in base64url. The key comes
 * from `SECRETS_KEY` or, on a single machine, from `DATA_DIR/secrets.key`, created once.
 */
export class SecretBox {
  /** A separate key for URL signatures, derived so that a MAC never reveals the encryption key. */
  private readonly macKey: Buffer

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('SecretBox needs a 32-byte key')
    this.macKey = createHash('sha256').update('agentchat url signing\0').update(key).digest()
  }

  /** HMAC-SHA256 (base64url) of `data`: signed upload and download URLs. */
  sign(data: string): string {
    return createHmac('sha256', this.macKey).update(data).digest('base64url')
  }

  verify(data: string, mac: string): boolean {
    return safeEqualHex(this.sign(data), mac)
  }

  seal(plain: string): string {
    const iv = randomBytes(12)
    const c = createCipheriv('aes-256-gcm', this.key, iv)
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()])
    return `v1:${iv.toString('base64url')}:${c.getAuthTag().toString('base64url')}:${body.toString('base64url')}`
  }

  open(sealed: string): string {
    const [v, iv, tag, body] = sealed.split(':')
    if (v !== 'v1' || !iv || !tag || body === undefined) throw new Error('unrecognised sealed secret')
    const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'))
    d.setAuthTag(Buffer.from(tag, 'base64url'))
    return Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()]).toString('utf8')
  }
}

/**
 * The configured key, or the one in `dataDir/secrets.key` (generated on first use). Creation is a
 * write to a private temp file and an atomic link(2) into place, so workers and processes that
 * start together all end up with the same key.
 */
export function loadSecretBox(configured: string | undefined, dataDir: string): SecretBox {
  if (configured) return new SecretBox(Buffer.from(configured, 'hex'))
  const file = join(dataDir, 'secrets.key')
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true })
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`
    writeFileSync(tmp, randomBytes(32).toString('hex'), { mode: 0o600 })
    try {
      linkSync(tmp, file)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    } finally {
      rmSync(tmp, { force: true })
    }
  }
  return new SecretBox(Buffer.from(readFileSync(file, 'utf8').trim(), 'hex'))
}
