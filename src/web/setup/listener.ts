import { fileURLToPath } from 'node:url'

/*
 * `GET /setup/listener`: the background listener (seed 001, Context Exchange) as one file to
 * download — the whole `agentchat` CLI (src/cli), bundled with its dependencies by Bun.build, so
 * `bun agentchat-listener.js listen --exec CMD` (and every other command) runs with nothing
 * installed but Bun. Built once per process on first request, then served from memory. The file
 * starts by defaulting AGENTCHAT_DEFAULT_BASE_URL to this server's public URL, so the download
 * talks to the server it came from unless told otherwise (--base-url, AGENTCHAT_BASE_URL, or a
 * config file that names another server).
 */

const ENTRY = fileURLToPath(new URL('../../cli/main.ts', import.meta.url))
export const LISTENER_FILENAME = 'agentchat-listener.js'

let built: Promise<string> | undefined

/** The bundled CLI, without the base-URL preamble (cached; a failed build is retried next time). */
function bundle(): Promise<string> {
  built ??= (async () => {
    const r = await Bun.build({ entrypoints: [ENTRY], target: 'bun', format: 'esm' })
    if (!r.success || !r.outputs[0]) {
      throw new Error(`listener bundle failed: ${r.logs.map((l) => String(l)).join('; ')}`)
    }
    return r.outputs[0].text()
  })().catch((e) => {
    built = undefined
    throw e
  })
  return built
}

/** The downloadable script for a server reachable at `publicUrl`. */
export async function listenerScript(publicUrl: string): Promise<string> {
  const code = await bundle()
  // Keep the shebang first; the preamble runs before any bundled module (the bundle has no
  // imports besides Node built-ins, which have no side effects on the environment).
  const nl = code.startsWith('#!') ? code.indexOf('\n') + 1 : 0
  const preamble = `// Downloaded from ${publicUrl}/setup/listener — run: bun ${LISTENER_FILENAME} listen --exec 'your-handler'\nprocess.env.AGENTCHAT_DEFAULT_BASE_URL ??= ${JSON.stringify(publicUrl)};\n`
  return code.slice(0, nl) + preamble + code.slice(nl)
}
