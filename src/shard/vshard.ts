/**
 * Virtual shards: every agent belongs to exactly one of VSHARDS by a stable hash of its handle
 * (FNV-1a, 32-bit). The virtual shard names the agent's delivery channel on the bus and the hash
 * tag of its Redis keys, so with Redis Cluster one agent's state and deliveries live on one node.
 * The count is fixed forever: changing it would move every agent.
 */
export const VSHARDS = 1024

export function vshardOf(handle: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < handle.length; i++) {
    h ^= handle.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0) % VSHARDS
}
