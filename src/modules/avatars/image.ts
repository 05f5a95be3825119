import sharp from 'sharp'
import { ApiError, fail } from '../../http/errors.ts'
import { bodyChunks } from '../../http/raw-body.ts'

/** Contract §3.5 / §17: avatar input limits and output. */
export const AVATAR = { maxBytes: 5 * 1024 * 1024, minSide: 128, maxPixels: 24_000_000, side: 512, quality: 85, writesPerMinute: 5 } as const

/** The format from the first bytes, never from the Content-Type a client claims. */
export function sniff(b: Uint8Array): 'jpeg' | 'png' | 'gif' | 'webp' | null {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg'
  if (b.length >= 8 && [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((x, i) => b[i] === x)) return 'png'
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, to))
  if (b.length >= 6 && (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a')) return 'gif'
  if (b.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp'
  return null
}

/**
 * Bytes → the stored avatar: EXIF orientation applied, centre-cropped to 512×512, WebP q85.
 * Refusals carry the contract's codes; sharp never sees more than 24 MP (limitInputPixels).
 */
export async function processAvatar(bytes: Uint8Array): Promise<Buffer> {
  if (bytes.length === 0) throw fail('EMPTY_BODY')
  if (!sniff(bytes)) throw fail('UNSUPPORTED_FORMAT')
  const opts = { limitInputPixels: AVATAR.maxPixels, failOn: 'error' as const }
  let width: number
  let height: number
  try {
    const meta = await sharp(bytes, opts).metadata()
    if (!meta.width || !meta.height) throw new Error('no dimensions')
    if (meta.width * meta.height > AVATAR.maxPixels) throw fail('PAYLOAD_TOO_LARGE', `Image exceeds ${AVATAR.maxPixels / 1e6} megapixels`)
    // Orientations 5–8 are rotated by 90°: width and height as displayed swap.
    const swap = (meta.orientation ?? 1) >= 5
    width = swap ? meta.height : meta.width
    height = swap ? meta.width : meta.height
  } catch (err) {
    if (err instanceof ApiError) throw err
    throw fail('DECODE_FAILED')
  }
  if (width < AVATAR.minSide || height < AVATAR.minSide) throw fail('IMAGE_TOO_SMALL', `Image is ${width}×${height}; at least ${AVATAR.minSide}×${AVATAR.minSide} is required`)
  try {
    return await sharp(bytes, opts).rotate().resize(AVATAR.side, AVATAR.side, { fit: 'cover', position: 'centre' }).webp({ quality: AVATAR.quality }).toBuffer()
  } catch {
    throw fail('PROCESSING_FAILED')
  }
}

/** Reads a raw body up to `max` bytes; 413 as soon as it is longer (never buffers more). */
export async function readCapped(request: Request, max: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const chunk of bodyChunks(request, max, () => fail('PAYLOAD_TOO_LARGE', `Body exceeds ${max} bytes`))) parts.push(chunk)
  return Buffer.concat(parts)
}
