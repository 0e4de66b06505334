/** At most `size` jobs at once; the rest wait their turn in order. */
export class Slots {
  #active = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(readonly size: number) {}

  get busy(): number {
    return this.#active;
  }

  async run<T>(job: () => Promise<T>): Promise<T> {
    while (this.#active >= this.size) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    this.#active++;
    try {
      return await job();
    } finally {
      this.#active--;
      this.#waiting.shift()?.();
    }
  }
}
