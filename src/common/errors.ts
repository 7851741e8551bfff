/**
 * The kedge error catalogue. Every error kedge raises carries a stable `code`, so logs,
 * metrics and tests match on codes rather than on message text, and a `cause` when it wraps
 * another error.
 */
export const ErrorCode = {
  /** Input that does not satisfy a schema or grammar (CRs, manifests, routes, config). */
  InvalidInput: 'KEDGE_ERR_INVALID_INPUT',
  /** A file or object that should exist does not. */
  NotFound: 'KEDGE_ERR_NOT_FOUND',
  /** A configuration file is missing, unreadable or invalid. */
  InvalidConfig: 'KEDGE_ERR_INVALID_CONFIG',
  /** A route string does not parse or does not compile. */
  InvalidRoute: 'KEDGE_ERR_INVALID_ROUTE',
  /** An identity failed authentication or tried something outside its scope. */
  Unauthorized: 'KEDGE_ERR_UNAUTHORIZED',
  /** A message, topic or property set over the documented limits. */
  LimitExceeded: 'KEDGE_ERR_LIMIT_EXCEEDED',
  /** The container runtime failed an operation. */
  Runtime: 'KEDGE_ERR_RUNTIME',
  /** An image could not be pulled. */
  ImagePull: 'KEDGE_ERR_IMAGE_PULL',
  /** An operation did not finish in time. */
  Timeout: 'KEDGE_ERR_TIMEOUT',
  /** A required external tool or service is unavailable. */
  Unavailable: 'KEDGE_ERR_UNAVAILABLE',
  /** An operation exists in the API but kedge does not implement it yet. */
  NotSupported: 'KEDGE_ERR_NOT_SUPPORTED',
  /** A bug: an invariant kedge relies on did not hold. */
  Internal: 'KEDGE_ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error with a catalogue code and an optional cause. */
export class KedgeError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KedgeError';
    this.code = code;
  }
}

/** True when `err` is a KedgeError with the given code (or any code when none is given). */
export function isKedgeError(err: unknown, code?: ErrorCode): err is KedgeError {
  return err instanceof KedgeError && (code === undefined || err.code === code);
}

/** The message of any thrown value, for one-line reporting. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
