/**
 * One device's websocket after it was authenticated and admitted to a session. Messages are
 * handled one at a time, in order, through a bounded queue; rate, frame size, idleness and a
 * device that stops reading each end the connection with their own close code.
 */
import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { Limits } from './config.js';
import type { Metrics } from './metrics.js';
import type { DeviceChannel, LiveSession } from '../sync/live-session.js';
import type { Role } from '../constat/permissions.js';
import { readMessage } from '../sync/protocol.js';
import type { ConstatError } from '../constat/errors.js';
import { CloseCode, closeCodeFor, closeReason, type CloseCodeValue } from './close-codes.js';
import { TokenBucket } from './token-bucket.js';

// Messages waiting behind the one being handled; more means the device outpaces us.
const MAX_QUEUED_MESSAGES = 512;

export interface DeviceConnectionOptions {
  ws: WebSocket;
  sessionId: string;
  role: Role;
  userId: string;
  deviceId: string;
  limits: Limits;
  metrics: Metrics;
  logger: Logger;
}

export class DeviceConnection implements DeviceChannel {
  readonly id = randomUUID();
  readonly role: Role;
  readonly #ws: WebSocket;
  readonly #opts: DeviceConnectionOptions;
  #logger: Logger | undefined;
  readonly #bucket: TokenBucket;
  #live: LiveSession | undefined;
  #queue: Uint8Array[] = [];
  #draining = false;
  #idleTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: DeviceConnectionOptions) {
    this.#opts = opts;
    this.#ws = opts.ws;
    this.role = opts.role;
    this.#bucket = new TokenBucket(opts.limits.messagesPerSecond, opts.limits.messageBurst);
    this.#resetIdle();
  }

  // Made on first use: a child logger per idle connection costs memory for nothing.
  get #log(): Logger {
    return (this.#logger ??= this.#opts.logger.child({
      sessionId: this.#opts.sessionId,
      connection: this.id,
      role: this.role,
      deviceId: this.#opts.deviceId,
    }));
  }

  /** Accepts a raw frame; frames received before the document is ready wait in the queue. */
  receive(data: Buffer, isBinary: boolean): void {
    if (this.#closed) return;
    this.#resetIdle();
    if (!isBinary)
      return this.close(CloseCode.badRequest, 'text frames are not part of the protocol');
    if (data.byteLength > this.#opts.limits.maxFrameBytes) {
      this.#opts.metrics.limitHits.inc({ limit: 'frame-size' });
      return this.close(
        CloseCode.tooLarge,
        `frame exceeds ${this.#opts.limits.maxFrameBytes} bytes`,
      );
    }
    if (!this.#bucket.take()) {
      this.#opts.metrics.limitHits.inc({ limit: 'message-rate' });
      return this.close(CloseCode.rateLimited, 'too many messages');
    }
    if (this.#queue.length >= MAX_QUEUED_MESSAGES) {
      this.#opts.metrics.limitHits.inc({ limit: 'queue' });
      return this.close(CloseCode.rateLimited, 'too many messages queued');
    }
    this.#queue.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.#drain();
  }

  /** Binds the connection to its live document and starts handling queued messages. */
  bind(live: LiveSession): void {
    this.#live = live;
    this.#drain();
  }

  #drain(): void {
    if (this.#draining || !this.#live) return;
    this.#draining = true;
    const live = this.#live;
    void (async () => {
      try {
        while (!this.#closed && this.#queue.length > 0) {
          const frame = this.#queue.shift()!;
          await live.handle(this, readMessage(frame));
        }
        // Drained: drop the storage the handshake burst grew the queue to.
        if (this.#queue.length === 0) this.#queue = [];
      } catch (err) {
        const code = closeCodeFor(err);
        if (code === CloseCode.internalError)
          this.#log.error({ err }, 'failed to handle a message');
        else this.#log.info({ code, reason: (err as Error).message }, 'closing device connection');
        this.close(code, closeReason(err));
      } finally {
        this.#draining = false;
      }
    })();
  }

  send(frame: Uint8Array): void {
    if (this.#closed || this.#ws.readyState !== this.#ws.OPEN) return;
    // A device that stops reading would make its send buffer grow without bound; it is cut off
    // and re-syncs from the document when it reconnects, so nothing is lost.
    const queued = this.#ws.bufferedAmount;
    // A single large frame (the whole document for a new device) is always let through.
    if (queued > 0 && queued + frame.byteLength > this.#opts.limits.maxBufferedBytes) {
      this.#opts.metrics.limitHits.inc({ limit: 'send-buffer' });
      this.close(CloseCode.tryAgainLater, 'device is not reading fast enough');
      return;
    }
    this.#ws.send(frame);
  }

  end(reason: ConstatError): void {
    this.close(closeCodeFor(reason), closeReason(reason));
  }

  #resetIdle(): void {
    if (this.#idleTimer) {
      this.#idleTimer.refresh(); // one timer per connection, not one per message
      return;
    }
    this.#idleTimer = setTimeout(() => {
      this.#opts.metrics.limitHits.inc({ limit: 'idle' });
      this.close(CloseCode.goingAway, 'idle timeout');
    }, this.#opts.limits.idleTimeoutMs);
    this.#idleTimer.unref();
  }

  close(code: CloseCodeValue, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    this.#queue = [];
    this.#opts.metrics.closes.inc({ code: String(code) });
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING) {
      this.#ws.close(code, reason);
      // A peer that never answers the close handshake must not hold the socket open.
      setTimeout(() => this.#ws.terminate(), 5_000).unref();
    }
  }

  /** The socket is gone (closed by either side). */
  onClosed(): void {
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    this.#queue = [];
  }
}
