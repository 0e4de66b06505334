/**
 * Preloaded by the test runner into each test file (`--import`). A runner killed with SIGKILL
 * cannot stop its test files, and a file left running keeps its servers, their ports and a core
 * busy after the run has gone. So each file watches its runner and, once it has died (the file
 * is handed to another parent), kills its own process group: itself and everything it started.
 * Polling is the only portable way Node has to learn of a parent's death.
 */
const runner = Number(process.env.CONSTAT_TEST_RUNNER_PID);
// Only for the runner's direct child, the leader of its group; processes the file starts
// inherit the variable but not this preload.
if (runner && process.ppid === runner) {
  setInterval(() => {
    if (process.ppid !== runner) process.kill(-process.pid, 'SIGKILL');
  }, 500).unref();
}
