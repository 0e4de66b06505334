/**
 * Runs a function at a wall-clock time, however far away: a timer holds at most ~24.8 days, so
 * a longer wait re-arms. Used to end a websocket or a subscription when its token expires.
 * One runs per connection, so it makes no closure of its own: the timer calls a shared
 * function with the deadline as its argument, which keeps an idle connection small.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

class Deadline {
  timer: NodeJS.Timeout | undefined;

  constructor(
    readonly at: number,
    readonly fn: () => void,
  ) {}

  cancel(): void {
    clearTimeout(this.timer);
  }
}

function arm(d: Deadline): void {
  const wait = d.at - Date.now();
  d.timer =
    wait <= 0
      ? setTimeout(d.fn, 0)
      : wait > MAX_TIMER_MS
        ? setTimeout(arm, MAX_TIMER_MS, d)
        : setTimeout(d.fn, wait);
  // Never what keeps the process alive: the connection it guards does that.
  d.timer.unref();
}

export function runAt(at: number, fn: () => void): { cancel(): void } {
  const deadline = new Deadline(at, fn);
  arm(deadline);
  return deadline;
}
