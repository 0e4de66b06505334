/**
 * What idle sessions are made of: two V8 heap snapshots of one server (loop-probe.mjs
 * `/heap/snapshot`, taken with `a` and then `b` sessions connected and idle) compared by
 * object kind — constructor name for objects, the V8 type for the rest (strings, arrays,
 * closures, compiled code…) — as self size and count per added session.
 *
 *   node --import tsx scripts/bench/heap-diff.ts A.heapsnapshot B.heapsnapshot SESSIONS [TOP]
 *
 * SESSIONS is b − a. Self sizes only: a Y.Doc's retained size is spread over its structs,
 * maps and strings, which is why the kinds are listed rather than owners.
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

export interface HeapKind {
  kind: string;
  bytes: number;
  count: number;
}

/** Self size and count of every object kind in a snapshot. */
export function heapKinds(file: string): Map<string, HeapKind> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const kinds = new Map<string, HeapKind>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!]!;
    const name = snap.strings[snap.nodes[i + nameAt]!]!;
    // Objects by constructor; strings, arrays, code… by type (their "names" are contents).
    const kind = type === 'object' || type === 'native' ? name : `(${type})`;
    const entry = kinds.get(kind) ?? { kind, bytes: 0, count: 0 };
    entry.bytes += snap.nodes[i + sizeAt]!;
    entry.count++;
    kinds.set(kind, entry);
  }
  return kinds;
}

/** Per added session: what grew between two snapshots, largest first. */
export function heapDiff(before: string, after: string, sessions: number): HeapKind[] {
  const a = heapKinds(before);
  const b = heapKinds(after);
  return [...b.values()]
    .map((k) => ({
      kind: k.kind,
      bytes: (k.bytes - (a.get(k.kind)?.bytes ?? 0)) / sessions,
      count: (k.count - (a.get(k.kind)?.count ?? 0)) / sessions,
    }))
    .sort((x, y) => y.bytes - x.bytes);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [before, after, sessions, top] = process.argv.slice(2);
  if (!before || !after || !sessions) throw new Error('usage: heap-diff A B SESSIONS [TOP]');
  const rows = heapDiff(before, after, Number(sessions));
  const total = rows.reduce((s, r) => s + r.bytes, 0);
  process.stdout.write(`${(total / 1024).toFixed(1)} KiB of heap per session\n`);
  for (const r of rows.slice(0, Number(top ?? 25))) {
    process.stdout.write(
      `${(r.bytes / 1024).toFixed(2).padStart(8)} KiB ${r.count.toFixed(1).padStart(7)} × ${r.kind}\n`,
    );
  }
}
