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
  | { op: 'merge'; parts: Uint8Array[] }
  | { op: 'missing'; parts: Uint8Array[]; extra: Uint8Array };

/** A document's whole state as one update, and its state vector. */
export interface EncodedDocument {
  update: Uint8Array;
  vector: Uint8Array;
}

/**
 * A Y.Doc for the server's work. Its guid is fixed: for a document without one Yjs draws a
 * random UUID with 31 calls to crypto.getRandomValues, about 150 µs on Node 20 against 7 µs
 * for the rest of an empty document (every load, wake and rebuild made one), and a guid only
 * names subdocuments, which a constat does not have. The client id stays random.
 */
export function newDoc(): Y.Doc {
  return new Y.Doc({ guid: 'constat' });
}

/**
 * Applying many small updates one by one costs a transaction each (a few hundred stroke
 * points: hundreds of ms); the ones after the base are merged first, and everything is
 * applied in one transaction.
 */
export function rebuild(parts: readonly Uint8Array[], origin?: unknown): Y.Doc {
  const doc = newDoc();
  applyParts(doc, parts, origin);
  return doc;
}

/** Applies a base and the updates since to `doc`, in one transaction. */
export function applyParts(doc: Y.Doc, parts: readonly Uint8Array[], origin?: unknown): void {
  const [base, ...since] = parts;
  const rest = since.length > 1 ? [mergeAll(since)] : since;
  doc.transact(() => {
    if (base) Y.applyUpdate(doc, base);
    for (const part of rest) Y.applyUpdate(doc, part);
  }, origin);
}

/**
 * `Y.mergeUpdates` sorts its inputs at every struct it writes: a large update among many small
 * ones costs (structs of the large one) × (number of updates). The small ones are merged
 * together first, then with the largest.
 */
function mergeAll(parts: Uint8Array[]): Uint8Array {
  if (parts.length <= 2) return parts.length === 1 ? parts[0]! : Y.mergeUpdates(parts);
  let largest = 0;
  for (let i = 1; i < parts.length; i++) {
    if (parts[i]!.byteLength > parts[largest]!.byteLength) largest = i;
  }
  const rest = parts.filter((_, i) => i !== largest);
  return Y.mergeUpdates([parts[largest]!, Y.mergeUpdates(rest)]);
}

/**
 * What `extra` (a whole document) holds that the document made of `parts` lacks, or
 * undefined if nothing: content, deletions, or structs still waiting for what they follow.
 */
function missing(parts: Uint8Array[], extra: Uint8Array): Uint8Array | undefined {
  const doc = rebuild(parts);
  try {
    const diff = Y.diffUpdate(extra, Y.encodeStateVector(doc));
    const pendingBefore = doc.store.pendingStructs;
    let changed = false;
    doc.on('afterTransaction', (tr: Y.Transaction) => {
      if (tr.changed.size > 0 || tr.deleteSet.clients.size > 0) changed = true;
    });
    Y.applyUpdate(doc, diff);
    return changed || doc.store.pendingStructs !== pendingBefore ? diff : undefined;
  } finally {
    doc.destroy();
  }
}

export function runYjsTask(task: YjsTask): EncodedDocument | Uint8Array | undefined {
  switch (task.op) {
    case 'merge':
      return mergeAll(task.parts);
    case 'missing':
      return missing(task.parts, task.extra);
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
