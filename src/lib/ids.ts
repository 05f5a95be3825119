import { randomBytes } from 'node:crypto'

/** Public id prefixes (contract §1.10). */
export type IdPrefix = 'agt' | 'msg' | 'conv' | 'grp' | 'gri' | 'whk' | 'whd' | 'rpt' | 'pnd' | 'att' | 'evt' | 'own' | 'dpnd' | 'ses' | 'esc' | 'ann' | 'apr' | 'thr' | 'inv' | 'creq' | 'mem'

/** `prefix_` + base64url of 12 random bytes (16 chars). */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`
}

/** Delivery ids are `del_` + 32 lowercase hex; ours encode the envelope's bigint position so cursors are positional. */
export function deliveryIdFromPosition(position: bigint | number): string {
  return `del_${BigInt(position).toString(16).padStart(32, '0')}`
}

const DELIVERY_ID = /^del_[0-9a-f]{32}$/

/** The position a delivery id encodes, or null when it is malformed. */
export function positionFromDeliveryId(id: string): bigint | null {
  if (!DELIVERY_ID.test(id)) return null
  return BigInt(`0x${id.slice(4)}`)
}
