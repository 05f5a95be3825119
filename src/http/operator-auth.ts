import { safeEqualHex, sha256Hex } from '../lib/crypto.ts'
import { opsAuthRequired } from './errors.ts'
import { bearerKey } from './auth.ts'

/**
 * Operator credentials (ADMIN_KEY, OPS_ADMIN_TOKEN, METRICS_TOKEN): 503 while unset, 401 when
 * missing or wrong. Compared as SHA-256 digests in constant time, so neither the length nor a
 * prefix of the secret leaks through timing.
 */
export function requireOperator(configured: string | undefined, presented: string | null): void {
  if (!configured) throw opsAuthRequired(false)
  if (!presented || !safeEqualHex(sha256Hex(presented), sha256Hex(configured))) throw opsAuthRequired(true)
}

export const operatorBearer = (req: Request) => bearerKey(req.headers.get('authorization'))
