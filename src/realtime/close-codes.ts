/**
 * Every WebSocket close the server sends, in one table (contract §12.6). 1008 is terminal for
 * clients (no reconnect); 1001 and 1013 tell them to reconnect and drain.
 */
export const CLOSE = {
  invalidToken: { code: 1008, reason: 'Invalid token' },
  helloRequired: { code: 1008, reason: 'HELLO frame required' },
  helloRequiredFirst: { code: 1008, reason: 'HELLO frame required first' },
  keyRotated: { code: 1008, reason: 'API key rotated' },
  accountDeleted: { code: 1008, reason: 'Account deleted' },
  accountSuspended: { code: 1008, reason: 'Account suspended' },
  invalidTicket: { code: 1008, reason: 'Invalid ticket' },
  signedOut: { code: 1008, reason: 'Signed out' },
  heartbeatTimeout: { code: 1001, reason: 'Heartbeat timeout' },
  shuttingDown: { code: 1001, reason: 'Server shutting down' },
  overload: { code: 1013, reason: 'overload' },
} as const satisfies Record<string, { code: number; reason: string }>
