/** Contract §14: what may be uploaded, and for how long the signed URLs live. */
export const ALLOWED_MIME = [
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'application/pdf',
  'application/json',
  'text/plain',
  'text/markdown',
  'text/csv',
  'audio/mpeg',
  'audio/wav',
  'audio/ogg',
  'video/mp4',
  'video/webm',
] as const
export const MAX_UPLOAD_BYTES = 26_214_400
/** The upload URL's lifetime (history value, contract §14.1). */
export const UPLOAD_URL_TTL_S = 7200
/** The download URL's lifetime (contract §14.3). */
export const DOWNLOAD_URL_TTL_S = 300

/** What a signed URL authorises: `up` (PUT the bytes) or `down` (GET them), for one attachment until `expires`. */
export const signedPayload = (purpose: 'up' | 'down', id: string, expires: number) => `${purpose}:${id}:${expires}`
