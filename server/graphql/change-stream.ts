/**
 * What one subscriber is sent: at each change notice the object is read again (with the
 * subscriber's own permissions) and delivered only if what it shows differs from the last
 * delivery. A notice says "look again", not what changed: several instances, or several causes,
 * may announce one change, and the subscriber gets it once.
 *
 * Notices are counted, never queued: memory per subscriber stays constant however far behind
 * it is. While the consumer (the SSE response) is not asking for the next message, its
 * connection is full; once more than `maxUnread` notices went unread like that, the subscriber
 * is cut off (`cutOff`) and the stream ends. The process never holds more for it.
 */

export interface ChangeStreamOptions<T> {
  /** Change notices (the pub/sub subscription); ended by `return()`. */
  notices: AsyncIterable<unknown>;
  /**
   * The object as the subscriber may see it now (throws to end the stream with an error), and
   * the key of what the subscriber is told about: equal keys are the same message.
   */
  read(): Promise<{ value: T; key: string }>;
  maxUnread: number;
  /** Called once when the subscriber falls more than `maxUnread` notices behind. */
  cutOff(unread: number): void;
}

export interface ChangeStream<T> extends AsyncIterableIterator<T> {
  /**
   * Sets what the subscriber already knows (the state read when it subscribed, after the
   * notices were listened to, so no change falls in between).
   */
  knows(key: string): void;
}

export function changeStream<T>(opts: ChangeStreamOptions<T>): ChangeStream<T> {
  const source = opts.notices[Symbol.asyncIterator]();
  let unread = 0;
  let lastKey: string | undefined;
  let ended = false;
  /** A `next()` is running: the consumer has room for a message. */
  let asked = false;
  let wake: (() => void) | undefined;
  const signal = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const end = async () => {
    if (ended) return;
    ended = true;
    signal();
    await source.return?.();
  };

  void (async () => {
    try {
      for (;;) {
        const { done } = await source.next();
        if (done || ended) return;
        unread++;
        if (!asked && unread > opts.maxUnread) {
          opts.cutOff(unread);
          await end();
          return;
        }
        signal();
      }
    } catch {
      // The notices ended with an error (the pub/sub closed): so does the stream.
    } finally {
      ended = true;
      signal();
    }
  })();

  const iterator: ChangeStream<T> = {
    knows(key: string) {
      lastKey = key;
    },
    async next(): Promise<IteratorResult<T>> {
      asked = true;
      try {
        for (;;) {
          if (ended) return { done: true, value: undefined };
          if (unread === 0) {
            await new Promise<void>((resolve) => (wake = resolve));
            continue;
          }
          unread = 0;
          const { value, key } = await opts.read();
          if (key === lastKey) continue;
          lastKey = key;
          return { done: false, value };
        }
      } finally {
        asked = false;
      }
    },
    async return(): Promise<IteratorResult<T>> {
      await end();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
