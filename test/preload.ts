import { setDefaultTimeout } from 'bun:test'

// Tests are quiet unless asked otherwise (LOG_LEVEL=info bun test).
process.env.LOG_LEVEL ??= 'silent'

// Bursts of thousands of sends must commit however slow a shared machine is, so the writer's
// 1 s queueing bound (503 past it) is lifted: spawned servers inherit this, in-process ones read
// it through test/harness.ts and test/contention.test.ts; the overload test sets its own bounds.
process.env.WRITER_MAX_WAIT_MS ??= '60000'

// Integration tests start real servers and databases; on a busy 2-core machine (CI, or another
// suite running beside this one) bun's default 5 s per test is not enough to start one. Nothing
// here measures speed: a test that needs more than this is hung, not slow. (setDefaultTimeout
// applies to the file being loaded, so every integration test file repeats it; this call covers
// the first.)
setDefaultTimeout(60_000)
