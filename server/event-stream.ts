/**
 * A server-sent events response (a GraphQL subscription) that the server can end early: the
 * last event it enqueues is an error naming the reason, then `complete`, then the stream
 * closes. A client that reads again gets them; the connection of one that does not (its
 * buffers are full, nothing more can reach it) is destroyed after `graceMs`.
 */
import type { SubscriberConnection } from './graphql/context.js';

export interface Connection {
  destroy(): void;
  once(event: 'close', listener: () => void): unknown;
}

export function endableEventStream(
  response: Response,
  connection: Connection | undefined,
  graceMs: number,
): { response: Response; subscriber: SubscriberConnection; cancel(): void } {
  const source = response.body!;
  const reader = source.getReader();
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let ended = false;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    async pull(c) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (!ended) {
          ended = true;
          c.error(err);
        }
        return;
      }
      if (ended) return; // cut off while this read was pending
      if (chunk.done) {
        ended = true;
        c.close();
      } else c.enqueue(chunk.value);
    },
    cancel(reason) {
      ended = true;
      cancel(reason);
    },
  });
  // Yoga's body may be its own stream class, whose reader does not pass a cancel on to the
  // source (the subscription would stay open): cancel the stream itself too. On a platform
  // stream that is locked this is refused, and the reader's cancel does it.
  const cancel = (reason?: unknown) => {
    void reader.cancel(reason).catch(() => {});
    void source.cancel(reason).catch(() => {});
  };
  const subscriber: SubscriberConnection = {
    cutOff(code, message) {
      if (ended) return;
      ended = true;
      const error = JSON.stringify({ errors: [{ message, extensions: { code } }] });
      // A blank line first: the event cut short (if any) ends before this one begins.
      controller.enqueue(
        encoder.encode(`\nevent: next\ndata: ${error}\n\nevent: complete\ndata:\n\n`),
      );
      controller.close();
      cancel();
      if (connection) {
        const timer = setTimeout(() => connection.destroy(), graceMs);
        timer.unref();
        connection.once('close', () => clearTimeout(timer));
      }
    },
  };
  // Yoga's headers may be its own Headers class: copied into the platform's.
  const headers = new Headers();
  response.headers.forEach((value, name) => headers.append(name, value));
  return {
    response: new Response(body, { status: response.status, headers }),
    subscriber,
    cancel,
  };
}
