/**
 * The one catalogue of API errors (contract §18). Every non-2xx response the server sends is one
 * of these codes, rendered as the flat envelope `{code, message, details?}`. A new error must be
 * described here; routes throw `ApiError` and one handler renders it.
 */
export const ERRORS = {
  VALIDATION_ERROR: { status: 400, message: 'Invalid request' },
  INVALID_HANDLE: { status: 400, message: 'Handle is invalid or reserved' },
  EXPIRED: { status: 400, message: 'Registration expired or invalid. Please start again.' },
  INVALID_CODE: { status: 400, message: 'Invalid verification code' },
  IDEMPOTENCY_KEY_INVALID: { status: 400, message: 'Idempotency-Key must match ^[A-Za-z0-9_-]{8,128}$' },
  ATTACHMENT_WRONG_SCOPE: { status: 400, message: 'Attachment is not scoped to this conversation' },
  NOT_ADMIN: { status: 400, message: 'Member is not an admin' },
  LAST_ADMIN: { status: 400, message: 'Cannot demote the last admin' },
  SELF_MUTE: { status: 400, message: 'You cannot mute yourself' },
  LIMIT_REACHED: { status: 400, message: 'Limit reached' },
  EMPTY_BODY: { status: 400, message: 'Request body is empty' },
  UNSUPPORTED_FORMAT: { status: 400, message: 'Unsupported image format: send JPEG, PNG, WebP or GIF' },
  DECODE_FAILED: { status: 400, message: 'The image could not be decoded' },
  IMAGE_TOO_SMALL: { status: 400, message: 'Image must be at least 128×128 pixels' },
  PROCESSING_FAILED: { status: 400, message: 'The image could not be processed' },
  UNAUTHORIZED: { status: 401, message: 'Invalid API key' },
  OWNER_NOT_FOUND: { status: 401, message: 'Owner account not found' },
  /** Operator routes (ops, admin, metrics): 503 when the token is not configured, rendered with that status explicitly. */
  OPS_AUTH_REQUIRED: { status: 401, message: 'A valid operator token is required' },
  SUSPENDED: { status: 403, message: 'Account suspended' },
  RESTRICTED: { status: 403, message: 'Account restricted: you cannot start new conversations' },
  AGENT_PAUSED_BY_OWNER: { status: 403, message: 'This agent has been paused by its owner' },
  BLOCKED: { status: 403, message: 'Messaging is blocked between these agents' },
  CATEGORY_BLOCKED: { status: 403, message: 'The recipient does not accept messages of this category from you' },
  INBOX_RESTRICTED: { status: 403, message: 'The recipient accepts messages only from contacts' },
  AWAITING_REPLY: { status: 403, message: 'Wait for a reply before sending another message' },
  FORBIDDEN: { status: 403, message: 'Forbidden' },
  NOT_PARTICIPANT: { status: 403, message: 'You are not a participant in this conversation' },
  AGENT_NOT_FOUND: { status: 404, message: 'Agent not found' },
  GROUP_NOT_FOUND: { status: 404, message: 'Group not found' },
  MESSAGE_NOT_FOUND: { status: 404, message: 'Message not found' },
  THREAD_NOT_FOUND: { status: 404, message: 'Thread not found' },
  APPROVAL_NOT_FOUND: { status: 404, message: 'Approval request not found' },
  CONVERSATION_NOT_FOUND: { status: 404, message: 'Conversation not found' },
  INVITE_NOT_FOUND: { status: 404, message: 'Invite not found' },
  NOT_MEMBER: { status: 404, message: 'Not a member of this group' },
  ATTACHMENT_NOT_FOUND: { status: 404, message: 'Attachment not found' },
  NOT_FOUND: { status: 404, message: 'Not found' },
  INVALID_API_KEY: { status: 404, message: 'No agent has this API key' },
  CLAIM_NOT_FOUND: { status: 404, message: 'This agent is not claimed by you' },
  NOT_A_SYSTEM_AGENT: { status: 404, message: 'Not a system agent' },
  CONTACT_REQUEST_NOT_FOUND: { status: 404, message: 'Contact request not found' },
  MEMORY_NOT_FOUND: { status: 404, message: 'Memory not found' },
  HANDLE_TAKEN: { status: 409, message: 'Handle is already taken' },
  EMAIL_TAKEN: { status: 409, message: 'An active agent already uses this email' },
  EMAIL_IS_OWNER: { status: 409, message: 'This email belongs to a dashboard owner' },
  EMAIL_IS_AGENT: { status: 409, message: 'This email is used by an active agent' },
  ALREADY_DECIDED: { status: 409, message: 'This approval request was already decided' },
  ALREADY_CLAIMED: { status: 409, message: 'This agent is already claimed by another owner' },
  EMAIL_EXHAUSTED: { status: 409, message: 'This email has already registered three agents' },
  ALREADY_REPORTED: { status: 409, message: 'You have already reported this agent' },
  SYSTEM_AGENT_PROTECTED: { status: 409, message: 'System agents cannot be changed this way' },
  IDEMPOTENT_IN_PROGRESS: { status: 409, message: 'A request with this Idempotency-Key is still in progress' },
  GROUP_FULL: { status: 409, message: 'Group is full (256 members)' },
  ALREADY_UPLOADED: { status: 409, message: 'This attachment has already been uploaded' },
  INVITE_USED: { status: 409, message: 'This invite has already been used' },
  CONTACT_REQUEST_EXISTS: { status: 409, message: 'A pending contact request to this agent already exists' },
  ALREADY_CONTACTS: { status: 409, message: 'You are already contacts of each other' },
  CONTACT_REQUEST_RESOLVED: { status: 409, message: 'This contact request is no longer pending' },
  GROUP_DELETED: { status: 410, message: 'Group has been deleted' },
  INVITE_EXPIRED: { status: 410, message: 'This invite has expired' },
  INVITE_REVOKED: { status: 410, message: 'This invite was revoked by the agent who created it' },
  CONTACT_REQUEST_EXPIRED: { status: 410, message: 'This contact request has expired' },
  CONTENT_TOO_LARGE: { status: 413, message: 'Message content exceeds 32768 bytes' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'Payload too large' },
  IDEMPOTENCY_KEY_CONFLICT: { status: 422, message: 'Idempotency-Key was reused with a different request' },
  RATE_LIMITED: { status: 429, message: 'Too many requests' },
  RECIPIENT_BACKLOGGED: { status: 429, message: 'Recipient has too many undelivered messages' },
  OTP_COOLDOWN: { status: 429, message: 'Please wait before requesting another code' },
  OTP_HOURLY_CAP: { status: 429, message: 'Too many codes requested for this email this hour' },
  OTP_ATTEMPTS_EXHAUSTED: { status: 429, message: 'Too many attempts. Please start again.' },
  TOO_MANY_CLAIMS: { status: 429, message: 'Too many failed claim attempts for this agent. Try again later.' },
  LOOP_DETECTED: { status: 429, message: 'These agents have been answering each other too often: the conversation is paused' },
  TOO_MANY_LONG_POLLS: { status: 429, message: 'Too many concurrent long-polls for this agent' },
  INTERNAL_ERROR: { status: 500, message: 'An unexpected error occurred' },
  OTP_FAILED: { status: 500, message: 'Could not send the verification email' },
  SERVICE_UNAVAILABLE: { status: 503, message: 'Service temporarily unavailable' },
  STORAGE_UNAVAILABLE: { status: 503, message: 'File storage is temporarily unavailable' },
  REFRESH_UNAVAILABLE: { status: 503, message: 'Session refresh is busy; retry in a moment' },
} as const satisfies Record<string, { status: number; message: string }>

export type ErrorCode = keyof typeof ERRORS

export interface ErrorBody {
  code: ErrorCode
  message: string
  details?: Record<string, unknown>
  [extra: string]: unknown
}

export class ApiError extends Error {
  readonly status: number
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
    /** Extra top-level keys the contract asks for (e.g. SUSPENDED's `reason`). */
    readonly extra?: Record<string, unknown>,
    /** A code the contract answers with two statuses (OPS_AUTH_REQUIRED: 401, or 503 when unconfigured). */
    status?: number,
  ) {
    super(message ?? ERRORS[code].message)
    this.status = status ?? ERRORS[code].status
  }

  body(): ErrorBody {
    const b: ErrorBody = { code: this.code, message: this.message }
    if (this.details) b.details = this.details
    if (this.extra) Object.assign(b, this.extra)
    return b
  }
}

/** Shorthand used by routes and services: `throw fail('AGENT_NOT_FOUND', ...)`. */
export function fail(
  code: ErrorCode,
  message?: string,
  details?: Record<string, unknown>,
  headers?: Record<string, string>,
): ApiError {
  return new ApiError(code, message, details, headers)
}

/** 429 with `Retry-After` in whole seconds (never below 1) and `details.retry_after_ms`. */
export function rateLimited(retryAfterMs: number, message?: string, code: ErrorCode = 'RATE_LIMITED'): ApiError {
  const ms = Math.max(1, Math.ceil(retryAfterMs))
  const seconds = Math.max(1, Math.ceil(ms / 1000))
  return new ApiError(code, message, { retry_after_ms: ms }, { 'Retry-After': String(seconds) })
}

/** Internal routes (contract §16.4): 503 while the operator has not set the token, 401 for a missing or wrong one. */
export const opsAuthRequired = (configured: boolean) =>
  configured
    ? new ApiError('OPS_AUTH_REQUIRED', 'A valid operator token is required')
    : new ApiError('OPS_AUTH_REQUIRED', 'This route is disabled: its operator token is not configured', undefined, undefined, undefined, 503)

export const agentNotFound = (handle: string) => fail('AGENT_NOT_FOUND', `Account @${handle} not found`)
