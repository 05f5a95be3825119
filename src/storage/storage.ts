/*
 * Object storage behind one small interface: files under DATA_DIR by default, any S3-compatible
 * store when S3_* is configured. Writes are streamed (a writer that takes chunks), so an upload
 * never sits in memory whole; a write that is abandoned leaves nothing behind.
 */

export interface ObjectWriter {
  write(chunk: Uint8Array): Promise<void> | void
  /** Make the object visible under its key. */
  commit(): Promise<void>
  /** Drop what was written; the key keeps its previous state (or stays absent). */
  abort(): Promise<void>
}

export interface StoredObject {
  stream: ReadableStream<Uint8Array>
  size: number
}

export interface ObjectStorage {
  readonly kind: 'files' | 's3'
  writer(key: string, contentType: string): Promise<ObjectWriter>
  put(key: string, bytes: Uint8Array, contentType: string): Promise<void>
  get(key: string): Promise<StoredObject | null>
  delete(key: string): Promise<void>
}

export class StorageUnavailable extends Error {}

/** Keys are ours ([a-z0-9/_.-]), never a client's: this refuses anything else outright. */
export function assertKey(key: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_./-]*$/.test(key) || key.includes('..')) throw new Error(`bad storage key ${key}`)
}
