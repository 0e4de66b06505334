/**
 * Whole-document Yjs work on encoded updates, without a live Y.Doc: what the off-thread worker
 * (yjs-worker.mjs) runs, and what the calling thread runs itself for small inputs.
 *
 * `state` rebuilds a document from its parts (a base and the updates since) and encodes it the
 * way the live document would (`Y.encodeStateAsUpdate`, deleted content collected), so the
 * result is the same as encoding the live Y.Doc, at the cost of a rebuild that happens on
 * another thread.
 */
import * as Y from 'yjs';

export type YjsTask =
  | { op: 'state'; parts: Uint8Array[] }
  | { op: 'diff'; parts: Uint8Array[]; vector: Uint8Array }
  | { op: 'merge'; parts: Uint8Array[] };

/** A document's whole state as one update, and its state vector. */
export interface EncodedDocument {
  update: Uint8Array;
  vector: Uint8Array;
}

function rebuild(parts: Uint8Array[]): Y.Doc {
  const doc = new Y.Doc();
  for (const part of parts) Y.applyUpdate(doc, part);
  return doc;
}

export function runYjsTask(task: YjsTask): EncodedDocument | Uint8Array {
  switch (task.op) {
    case 'merge':
      return task.parts.length === 1 ? task.parts[0]! : Y.mergeUpdates(task.parts);
    case 'state': {
      const doc = rebuild(task.parts);
      try {
        return { update: Y.encodeStateAsUpdate(doc), vector: Y.encodeStateVector(doc) };
      } finally {
        doc.destroy();
      }
    }
    case 'diff': {
      const doc = rebuild(task.parts);
      try {
        return Y.encodeStateAsUpdate(doc, task.vector);
      } finally {
        doc.destroy();
      }
    }
  }
}
