import { S3Client } from 'bun'
import { assertKey, StorageUnavailable, type ObjectStorage, type ObjectWriter, type StoredObject } from './storage.ts'

export interface S3Options {
  bucket: string
  endpoint: string | undefined
  region: string
  accessKeyId: string | undefined
  secretAccessKey: string | undefined
}

/**
 * Any S3-compatible store through Bun's built-in client. Streamed writes are multipart uploads:
 * nothing is visible under the key until `commit`; an aborted one is deleted.
 */
export class S3Storage implements ObjectStorage {
  readonly kind = 's3' as const
  private readonly client: S3Client

  constructor(o: S3Options) {
    this.client = new S3Client({ bucket: o.bucket, endpoint: o.endpoint, region: o.region, accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey })
  }

  async writer(key: string, contentType: string): Promise<ObjectWriter> {
    assertKey(key)
    const file = this.client.file(key)
    const sink = file.writer({ type: contentType, partSize: 5 * 1024 * 1024, retry: 2 })
    let done = false
    return {
      write: async (chunk) => {
        await sink.write(chunk)
      },
      commit: async () => {
        done = true
        try {
          await sink.end()
        } catch (err) {
          throw new StorageUnavailable(String(err))
        }
      },
      abort: async () => {
        if (done) return
        done = true
        try {
          await sink.end()
        } catch {}
        await file.delete().catch(() => {})
      },
    }
  }

  async put(key: string, bytes: Uint8Array, contentType: string): Promise<void> {
    assertKey(key)
    try {
      await this.client.write(key, bytes, { type: contentType })
    } catch (err) {
      throw new StorageUnavailable(String(err))
    }
  }

  async get(key: string): Promise<StoredObject | null> {
    assertKey(key)
    const file = this.client.file(key)
    try {
      const s = await file.stat()
      return { stream: file.stream(), size: s.size }
    } catch (err) {
      if (/NoSuchKey|not found|404/i.test(String((err as { code?: string }).code ?? err))) return null
      throw new StorageUnavailable(String(err))
    }
  }

  async delete(key: string): Promise<void> {
    assertKey(key)
    await this.client.file(key).delete()
  }
}
