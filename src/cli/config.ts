// Where the CLI keeps who it is between runs. The file holds an API key, so it is written the way
// ssh writes its keys: the directory 0700, the file 0600, and atomically (tmp + fsync + rename) so
// a crash mid-write never leaves half a key behind.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { UsageError } from '../client/errors.ts'

export interface StoredConfig {
  base_url: string
  handle: string
  api_key: string
}

/** `$AGENTCHAT_CONFIG`, else `$XDG_CONFIG_HOME/agentchat/config.json`, else `~/.config/agentchat/config.json`. */
export function configPath(env: Record<string, string | undefined> = process.env): string {
  if (env.AGENTCHAT_CONFIG?.trim()) return env.AGENTCHAT_CONFIG.trim()
  const base = env.XDG_CONFIG_HOME?.trim() || join(homedir(), '.config')
  return join(base, 'agentchat', 'config.json')
}

/** The stored config, or undefined when there is none yet; a file that is not ours is an error. */
export function readConfig(path = configPath()): StoredConfig | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new UsageError(`cannot read ${path}: ${(e as Error).message}`, 'CONFIG_ERROR')
  }
  try {
    const c = JSON.parse(text) as Partial<StoredConfig>
    if (typeof c.api_key !== 'string' || typeof c.base_url !== 'string') throw new Error('missing api_key or base_url')
    return { base_url: c.base_url, handle: typeof c.handle === 'string' ? c.handle : '', api_key: c.api_key }
  } catch (e) {
    throw new UsageError(`${path} is not a valid config file: ${(e as Error).message}`, 'CONFIG_ERROR')
  }
}

export function writeConfig(config: StoredConfig, path = configPath()): void {
  writeFileAtomic(path, JSON.stringify(config, null, 2) + '\n', 0o600)
}

/**
 * Write `data` to `path` so that readers see the old file or the new one, never a mix: a sibling
 * tmp file is written and fsynced, then renamed over the target, then the directory is fsynced so
 * the rename itself survives a power cut. Created with `mode` from the start (no window in which
 * a key sits in a world-readable file); the directory is created 0700.
 */
export function writeFileAtomic(path: string, data: string, mode = 0o600): void {
  const dir = dirname(path)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.${Date.now().toString(36)}.tmp`
  const fd = openSync(tmp, 'w', mode)
  try {
    writeSync(fd, data)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
  try {
    const dfd = openSync(dir, 'r')
    try {
      fsyncSync(dfd)
    } finally {
      closeSync(dfd)
    }
  } catch {
    // Some filesystems refuse to open or fsync a directory; the rename is still atomic there.
  }
}
