/**
 * Background loops that poll for work: the outbox relay, the embedded AI feed. `Sleeper` is a
 * sleep that can be cut short (`wake`: work is waiting) and ends for good on `close`;
 * `PollLoop` runs a step again at once while it finds work or was woken during the step, polls
 * when idle, and backs off (doubling, capped) after a failure until a step does some work again.
 */
export class Sleeper {
  readonly #wakers = new Set<() => void>();
  #closed = false;

  get closed(): boolean {
    return this.#closed;
  }

  #onClose: () => void = () => {};
  /** Resolves when `close()` is called. */
  readonly closing: Promise<void> = new Promise((resolve) => (this.#onClose = resolve));

  sleep(ms: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wakers.add(done);
    });
  }

  /** Ends the sleeps under way. */
  wake(): void {
    for (const done of [...this.#wakers]) done();
  }

  /** Ends the sleeps under way and every later one at once. */
  close(): void {
    this.#closed = true;
    this.#onClose();
    this.wake();
  }
}

export interface PollLoopOptions {
  /** One round of work; resolves with how much it did (0: nothing waiting). Throws on failure. */
  step: () => Promise<number>;
  pollMs: number;
  backoff: { firstMs: number; maxMs: number };
  onError: (err: unknown, failures: number) => void;
}

export class PollLoop {
  readonly #opts: PollLoopOptions;
  readonly #sleeper = new Sleeper();
  #running: Promise<void> | undefined;
  /** Woken during the current step: it may have looked before the work arrived. */
  #woken = false;

  constructor(opts: PollLoopOptions) {
    this.#opts = opts;
  }

  start(): void {
    this.#running ??= this.#loop();
  }

  /** Work was just added: look now rather than at the next poll. */
  wake(): void {
    this.#woken = true;
    this.#sleeper.wake();
  }

  async #loop(): Promise<void> {
    let failures = 0;
    while (!this.#sleeper.closed) {
      let done = 0;
      this.#woken = false;
      try {
        done = await this.#opts.step();
        // An empty round says nothing about the failure (the failed work may not be due yet):
        // only work done ends the backoff.
        if (done > 0) failures = 0;
      } catch (err) {
        failures++;
        this.#opts.onError(err, failures);
      }
      if (done > 0 && failures === 0) continue; // more may be waiting
      // A wake during the step (an event committed after the step's query) would otherwise
      // wait a whole poll: its sleep was not under way to be cut short.
      if (this.#woken && failures === 0) continue;
      const { firstMs, maxMs } = this.#opts.backoff;
      await this.#sleeper.sleep(
        failures > 0 ? Math.min(firstMs * 2 ** (failures - 1), maxMs) : this.#opts.pollMs,
      );
    }
  }

  async close(): Promise<void> {
    this.#sleeper.close();
    await this.#running;
  }
}
