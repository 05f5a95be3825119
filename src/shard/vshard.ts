/**
 * Virtual shards: every agent belongs to exactly one of VSHARDS by a stable hash of its handle
 * (FNV-1a, 32-bit). The virtual shard names the agent's delivery channel on the bus and the hash
 * tag of its Redis keys, so with Redis Cluster one agent's state and deliveries live on one node.
 * The count is fixed forever: changing it would move every agent.
 */
export const VSHARDS = 1024

/** FNV-1a, 32-bit: stable across processes and releases (shards, writer lanes). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

export function vshardOf(handle: string): number {
  return fnv1a(handle) % VSHARDS
}
