/**
 * What this instance appended to a shared hub can come back to it: the hub does not notify an
 * instance of its own appends, but a catch-up read (after a gap, a reconnect) goes through the
 * stream and returns them with the rest. Applying that copy changes nothing (it is already
 * applied here: Yjs updates and awareness entries are idempotent), but it still costs a full
 * decode and a transaction per edit. The live document remembers what it appended and
 * applied, and skips a delivery that is byte for byte one of those. A copy that arrives before
 * the append was acknowledged is not remembered yet and is applied as any other; one that
 * never arrives ages out (at most `capacity` are remembered).
 */
import type { HubMessage } from './hub.js';

const DEFAULT_CAPACITY = 32;

export class HubEchoes {
  readonly #sent: HubMessage[] = [];
  readonly #capacity: number;

  constructor(capacity = DEFAULT_CAPACITY) {
    this.#capacity = capacity;
  }

  /** `message` was appended and is applied here. */
  remember(message: HubMessage): void {
    if (this.#sent.push(message) > this.#capacity) this.#sent.shift();
  }

  /**
   * True when `message` is the copy of one remembered (forgotten then, with those appended
   * before it: the hub delivers one instance's appends in the order they were acknowledged).
   */
  isEcho(message: HubMessage): boolean {
    const sent = this.#sent;
    for (let i = 0; i < sent.length; i++) {
      const mine = sent[i]!;
      if (mine.kind === message.kind && Buffer.compare(mine.update, message.update) === 0) {
        sent.splice(0, i + 1);
        return true;
      }
    }
    return false;
  }
}
