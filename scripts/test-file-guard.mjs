/**
 * Preloaded by the test runner into each test file (`--import`). A runner killed with SIGKILL
 * cannot stop its test files, and a file left running keeps its servers, their ports and a core
 * busy after the run has gone. So each file watches its runner and, once it has died (the file
 * is handed to another parent), kills its own process group: itself and everything it started.
 * Polling is the only portable way Node has to learn of a parent's death.
 *
 * Plain JavaScript: worker threads inherit the `--import` flags, and in them this file loads
 * before any TypeScript loader is in place.
 */
import { isMainThread } from 'node:worker_threads';

const runner = Number(process.env.CONSTAT_TEST_RUNNER_PID);
// Only in the runner's direct child, the leader of its group: processes the file starts inherit
// the variable, and its worker threads the flag, but neither is the group's leader.
if (isMainThread && runner && process.ppid === runner) {
  setInterval(() => {
    if (process.ppid !== runner) process.kill(-process.pid, 'SIGKILL');
  }, 500).unref();
}
