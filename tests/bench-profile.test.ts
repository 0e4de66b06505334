/**
 * The benchmark's allocation summary, pure: bytes go to the function that allocated them and
 * to the nearest project function above it (`(none)` when no project code is on the stack).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { summariseAllocations } from '../scripts/bench/profile.js';

const test = suite('bench allocation profile');

let id = 0;
const node = (functionName: string, url: string, selfSize: number, children: unknown[] = []) => ({
  callFrame: { functionName, url, lineNumber: 9, columnNumber: 0, scriptId: '0' },
  selfSize,
  id: ++id,
  children,
});

test('bytes by allocating function and by the nearest project function above', async () => {
  const root = node('(root)', '', 0, [
    node('sweep', 'file:///app/hub/compactor.ts', 100, [
      node('sendCommand', 'file:///app/node_modules/ioredis/built/Redis.js', 300, [
        node('Buffer', '', 200),
      ]),
    ]),
    node('listOnTimeout', 'node:internal/timers', 0, [node('Map', '', 400)]),
  ]);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'heap-'));
  try {
    const file = path.join(dir, 'x.heapprofile');
    await writeFile(file, JSON.stringify({ head: root, samples: [] }));
    const s = summariseAllocations(file, 5);
    assert.is(s.totalMiB, 1000 / 2 ** 20);
    assert.equal(
      s.project.map((p) => [p.name, p.where, p.share]),
      [
        ['sweep', 'hub/:10', 0.6],
        ['(none)', '', 0.4],
      ],
    );
    assert.equal(
      s.self.map((p) => [p.name, p.share]),
      [
        ['Map', 0.4],
        ['sendCommand', 0.3],
        ['Buffer', 0.2],
        ['sweep', 0.1],
      ],
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
