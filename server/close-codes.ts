/**
 * Websocket close codes, mirroring HTTP. 4400–4499 are permanent: a stock y-websocket client
 * stops reconnecting. 1001/1011/1013 are transient: it reconnects and re-syncs.
 */
import { ConstatError } from '../constat/errors.js';
import { ProtocolError } from '../sync/protocol.js';

export const CloseCode = {
  goingAway: 1001,
  internalError: 1011,
  tryAgainLater: 1013,
  badRequest: 4400,
  unauthenticated: 4401,
  forbidden: 4403,
  notFound: 4404,
  finalized: 4409,
  tooLarge: 4413,
  rateLimited: 4429,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

export function closeCodeFor(err: unknown): CloseCodeValue {
  if (err instanceof ProtocolError) return CloseCode.badRequest;
  if (!(err instanceof ConstatError)) return CloseCode.internalError;
  switch (err.code) {
    case 'UNAUTHENTICATED':
      return CloseCode.unauthenticated;
    case 'FORBIDDEN':
      return CloseCode.forbidden;
    case 'NOT_FOUND':
      return CloseCode.notFound;
    case 'GONE':
      return CloseCode.finalized;
    case 'TOO_LARGE':
      return CloseCode.tooLarge;
    case 'RATE_LIMITED':
      return CloseCode.rateLimited;
    case 'BAD_USER_INPUT':
    case 'CONFLICT':
      return CloseCode.badRequest;
    case 'UNAVAILABLE':
      return CloseCode.tryAgainLater;
  }
}

/** Close reasons are limited to 123 bytes by RFC 6455. */
export function closeReason(err: unknown): string {
  const message = err instanceof Error ? err.message : 'internal error';
  const bytes = Buffer.from(message);
  return bytes.byteLength <= 123
    ? message
    : bytes
        .subarray(0, 120)
        .toString('utf8')
        .replace(/\uFFFD$/, '') + '…';
}
