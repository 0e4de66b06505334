// The worker thread of draft-folds.ts. Plain JavaScript because a worker thread does not
// inherit the TypeScript loader the process registered (bin/constat.js): it registers its own,
// then runs the task with its own connection (draft-fold-task.ts).
import { register } from 'tsx/esm/api';

register();
const { runDraftTask } = await import('./draft-fold-task.ts');

export default function run(task) {
  return runDraftTask(task);
}
