/**
 * Runs a function at a wall-clock time, however far away: a timer holds at most ~24.8 days, so
 * a longer wait re-arms. Used to end a websocket or a subscription when its token expires.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function runAt(at: number, fn: () => void): { cancel(): void } {
  let timer: NodeJS.Timeout;
  const arm = () => {
    const wait = at - Date.now();
    timer =
      wait <= 0
        ? setTimeout(fn, 0)
        : setTimeout(wait > MAX_TIMER_MS ? arm : fn, Math.min(wait, MAX_TIMER_MS));
    // Never what keeps the process alive: the connection it guards does that.
    timer.unref();
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}
