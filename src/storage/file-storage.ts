import { randomBytes } from 'node:crypto'
import { mkdir, rename, rm, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { assertKey, StorageUnavailable, type ObjectStorage, type ObjectWriter, type StoredObject } from './storage.ts'

/** Objects as files under `root` (DATA_DIR/files): written to a temp name, renamed into place on commit. */
export class FileStorage implements ObjectStorage {
  readonly kind = 'files' as const
  constructor(private readonly root: string) {}

  private path(key: string) {
    assertKey(key)
    return join(this.root, key)
  }

  async writer(key: string): Promise<ObjectWriter> {
    const final = this.path(key)
    const tmp = join(this.root, '.tmp', `${randomBytes(8).toString('hex')}`)
    try {
      await mkdir(dirname(tmp), { recursive: true })
      await mkdir(dirname(final), { recursive: true })
    } catch (err) {
      throw new StorageUnavailable(String(err))
    }
    const sink = Bun.file(tmp).writer()
    let done = false
    return {
      write: (chunk) => {
        sink.write(chunk)
      },
      commit: async () => {
        done = true
        await sink.end()
        await rename(tmp, final)
      },
      abort: async () => {
        if (done) return
        done = true
        try {
          await sink.end()
        } catch {}
        await rm(tmp, { force: true })
      },
    }
  }

  async put(key: string, bytes: Uint8Array, contentType: string): Promise<void> {
    const w = await this.writer(key)
    w.write(bytes)
    await w.commit()
    void contentType
  }

  async get(key: string): Promise<StoredObject | null> {
    const p = this.path(key)
    try {
      const s = await stat(p)
      return { stream: Bun.file(p).stream(), size: s.size }
    } catch {
      return null
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true })
  }
}
