// The worker thread of yjs-offload.ts. Plain JavaScript because a worker thread does not
// inherit the TypeScript loader the process registered (bin/constat.js): it registers its own,
// then runs the same task code as the calling thread (yjs-ops.ts).
import { register } from 'tsx/esm/api';

register();
const { runYjsTask } = await import('./yjs-ops.ts');

export default function run(task) {
  return runYjsTask(task);
}
