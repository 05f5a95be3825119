// Running the user's CMD for one message: `sh -c CMD` with the message as one JSON object on
// stdin, stdout captured (it becomes the reply), stderr passed through to ours so the user sees
// their handler's diagnostics. The child gets a process group of its own (detached) so the
// Ctrl-C meant for the listener does not kill the message being handled: the listener lets it
// finish, then exits. A CMD running past the timeout is killed (its whole group) and counts as
// a failure.
import { spawn } from 'node:child_process'

export interface ExecResult {
  /** Exit status, or null when killed by a signal (timeout). */
  code: number | null
  signal: string | null
  stdout: string
  timedOut: boolean
}

export function runHandler(cmd: string, input: string, opts: { timeoutMs: number; env: Record<string, string> }): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', cmd], {
      stdio: ['pipe', 'pipe', 'inherit'],
      detached: true,
      env: { ...process.env, ...opts.env },
    })
    const chunks: Buffer[] = []
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        child.kill('SIGKILL')
      }
    }, opts.timeoutMs)
    child.stdout!.on('data', (b: Buffer) => chunks.push(b))
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout: Buffer.concat(chunks).toString('utf8'), timedOut })
    })
    // A CMD that never reads stdin closes the pipe early: that is its business, not an error.
    child.stdin!.on('error', () => {})
    child.stdin!.end(input + '\n')
  })
}
