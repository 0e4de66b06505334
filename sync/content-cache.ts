/**
 * The content of a live document as it is signed and stored: materialised, canonical JSON and
 * its hash. Computing it walks the whole document, and signing, reviewing and finalizing each
 * need it, so it is kept until a transaction changes something under a content root (from any
 * origin: a device, the hub, a load). Signatures and meta live outside the content roots, so
 * adding a signature or the constat id keeps it.
 */
import type * as Y from 'yjs';
import { CONTENT_ROOTS, materialise, type ConstatContent } from '../constat/constat-doc.js';
import { canonicalJson } from '../constat/canonical-json.js';
import { sha256Hex } from '../constat/content-hash.js';

export interface DerivedContent {
  readonly content: ConstatContent;
  readonly canonical: string;
  readonly hash: string;
}

export class ContentCache {
  readonly #doc: Y.Doc;
  readonly #roots: ReadonlySet<object>;
  #current: DerivedContent | undefined;

  constructor(doc: Y.Doc) {
    this.#doc = doc;
    this.#roots = new Set<object>(CONTENT_ROOTS.map((root) => doc.getMap(root)));
    doc.on('afterTransaction', (tr: Y.Transaction) => {
      if (this.#current && touchesAny(tr, this.#roots)) this.#current = undefined;
    });
  }

  get(): DerivedContent {
    if (!this.#current) {
      const content = materialise(this.#doc);
      const canonical = canonicalJson(content);
      this.#current = { content, canonical, hash: sha256Hex(canonical) };
    }
    return this.#current;
  }
}

/** Whether the transaction changed anything under one of these root types. */
function touchesAny(tr: Y.Transaction, roots: ReadonlySet<object>): boolean {
  for (const changed of tr.changed.keys()) {
    let type = changed;
    while (type._item) type = type._item.parent as typeof type;
    if (roots.has(type)) return true;
  }
  return false;
}
