import type { ApiError } from './errors.ts'

/**
 * The chunks of a raw (non-JSON) request body, as they arrive: `tooLarge()` is thrown as soon as
 * the declared Content-Length or the bytes received pass `max`, and the rest of the stream is
 * cancelled. Nothing is buffered here, so a caller can stream to storage (uploads) or collect a
 * small body (avatars) under the same limit rule.
 */
export async function* bodyChunks(request: Request, max: number, tooLarge: () => ApiError): AsyncGenerator<Uint8Array> {
  if (Number(request.headers.get('content-length') ?? 0) > max) throw tooLarge()
  if (!request.body) return
  const reader = request.body.getReader()
  let n = 0
  let done = false
  try {
    for (;;) {
      const r = await reader.read()
      if (r.done) {
        done = true
        return
      }
      n += r.value.byteLength
      if (n > max) throw tooLarge()
      yield r.value
    }
  } finally {
    if (!done) await reader.cancel().catch(() => {})
  }
}
