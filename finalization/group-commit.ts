/**
 * Group commit: work submitted while a commit is in flight waits for it and then goes in the
 * next commit, all together, so a burst of finalizations costs a few transactions rather than
 * one each. A lone submission starts at once (no window to wait out): grouping comes only from
 * the time the previous commit takes.
 *
 * A group that fails is retried item by item, so one bad item cannot hold back the others;
 * each caller gets its own item's outcome or error.
 */
export class GroupCommit<I, O> {
  readonly #commit: (items: I[]) => Promise<O[]>;
  readonly #maxItems: number;
  #waiting: Array<{ item: I; resolve: (o: O) => void; reject: (err: unknown) => void }> = [];
  #running = false;

  /** `commit` returns one outcome per item, in order. */
  constructor(commit: (items: I[]) => Promise<O[]>, maxItems: number) {
    this.#commit = commit;
    this.#maxItems = maxItems;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (!this.#running) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#waiting.length > 0) {
        const group = this.#waiting.splice(0, this.#maxItems);
        try {
          const outcomes = await this.#commit(group.map((w) => w.item));
          group.forEach((w, i) => w.resolve(outcomes[i]!));
        } catch (err) {
          if (group.length === 1) {
            group[0]!.reject(err);
            continue;
          }
          // At once rather than one after the other: while the database is unreachable each
          // would wait out its own connection timeout.
          await Promise.all(
            group.map(async (w) => {
              try {
                w.resolve((await this.#commit([w.item]))[0]!);
              } catch (itemErr) {
                w.reject(itemErr);
              }
            }),
          );
        }
      }
    } finally {
      this.#running = false;
    }
  }
}
