// Tests are quiet unless asked otherwise (LOG_LEVEL=info bun test).
process.env.LOG_LEVEL ??= 'silent'
