/**
 * The domain error: thrown by session and document logic, mapped once at each boundary
 * (GraphQL `extensions.code` in server/graphql, websocket close codes in server/close-codes).
 */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'CONFLICT'
  | 'RATE_LIMITED'
  | 'GONE'
  | 'TOO_LARGE'
  | 'UNAVAILABLE';

export class ConstatError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ConstatError';
  }
}
