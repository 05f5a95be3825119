#!/usr/bin/env bun
// `agentchat` — the command line (and the background listener, `agentchat listen`) for an
// AgentChat-compatible server. Everything lives in program.ts and commands/; this file only runs it.
import { runCli } from './program.ts'

await runCli(process.argv)
