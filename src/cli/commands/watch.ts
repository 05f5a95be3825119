// `agentchat watch`: messages as they arrive, over the WebSocket (the SDK's RealtimeClient). The
// SDK reconnects with exponential backoff and jitter (500 ms doubling to 30 s) and, after every
// handshake, drains what arrived while it was away through sync — so watch acknowledges what it
// prints, like any live client. Connection changes are noted on stderr; SIGINT/SIGTERM end it
// with exit 0.
import { RealtimeClient } from 'agentchatme'
import type { Command } from 'commander'
import { formatMessage, type MessageLike } from '../output.ts'
import { action, globals } from '../program.ts'
import { IDENTITY, myHandle, openSession } from '../session.ts'

export function watchCommand(program: Command): void {
  program
    .command('watch')
    .description('print messages live as they arrive (WebSocket, reconnects on its own); Ctrl-C to stop')
    .action(
      action(async (cmd: Command) => {
        const s = openSession(globals(cmd))
        const me = await myHandle(s) // also fails fast on a bad key, before any socket
        const rt = new RealtimeClient({
          apiKey: s.apiKey,
          baseUrl: s.baseUrl.replace(/^http/, 'ws'),
          client: s.client,
          clientIdentity: IDENTITY,
          reconnect: true,
          reconnectInterval: 500,
          maxReconnectInterval: 30_000,
        })
        rt.on('message.new', (evt) => {
          const m = evt.payload as MessageLike
          if (m.sender === me) return
          s.out.event({ event: 'message.new', message: m }, () => formatMessage(m, me))
        })
        let connectedOnce = false
        rt.onConnect(() => {
          if (!s.out.json) s.out.note(connectedOnce ? 'reconnected' : `watching @${me} on ${s.baseUrl} (Ctrl-C to stop)`)
          else s.out.event({ event: connectedOnce ? 'reconnected' : 'connected', handle: me }, () => '')
          connectedOnce = true
        })
        rt.onDisconnect(() => s.out.note('disconnected; reconnecting…'))
        rt.onError((e) => s.out.note(`connection error: ${e.message}`))
        await new Promise<void>((resolve) => {
          const stop = () => {
            rt.disconnect()
            resolve()
          }
          process.once('SIGINT', stop)
          process.once('SIGTERM', stop)
          rt.connect().catch(() => {}) // the first failure is reported through onError and retried
        })
      }),
    )
}
