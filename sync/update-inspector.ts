/**
 * Decides, before an update touches the live document, whether a device may apply it.
 *
 * Each struct of the update names its parent by root name, by the id of a parent item, or not
 * at all (then it inherits the parent of its origin or right origin). We resolve every new
 * struct and every new deletion to its root against the live store plus the update's own
 * structs — no copy of the document is made, which keeps this to microseconds per update
 * instead of milliseconds (sketch strokes are frequent).
 *
 * Client ids are owned: the first party whose connection introduces a Yjs client id owns it
 * (recorded by the caller in `meta.clients`). A device may only add structs under client ids it
 * owns or new ones. Without this a device could pre-fill the other party's next clocks (for
 * instance with GC structs, which carry no parent) and silently swallow their future edits.
 *
 * Nothing may be left pending. Yjs parks what it cannot integrate yet (`store.pendingStructs`,
 * `store.pendingDs`) and applies it silently when the missing clocks arrive — from anyone. A
 * parked deletion over the other party's *future* clocks would erase their next edits on the
 * server while their phone still shows them (docs/security.md). So an accepted update must
 * integrate completely against the server's copy as it is now:
 * - per client, its new structs start at the server's clock for that client and leave no gap;
 *   a `Skip` (a hole a merged update carries) is owned like any struct, and one that reaches
 *   past the server's clocks is a gap;
 * - every origin, right origin and parent is known to the server or integrates in the update;
 * - a deletion names only clocks the server has, or clocks the update's own structs fill.
 *
 * Nesting is bounded: a shared type or a JSON object/array inside a root counts one level, and
 * no value may sit deeper than MAX_NESTING_DEPTH (see nesting.ts for why).
 *
 * Outcomes:
 * - `ok`: apply it; `newClients` must be recorded as owned by the sender first.
 * - `forbidden`: a write into a root the sender may not write — permanent (close 4403).
 * - `too-deep`: nesting beyond the limit — permanent (close 4413).
 * - `retry`: the update would leave something pending: it depends on something this server
 *   does not have yet (a missing origin, a deletion of an unknown clock, a clock gap), or it
 *   carries the other party's edits that the server lost and the device is relaying back. A
 *   device that just moved to an instance whose hub read is a few milliseconds behind sends
 *   exactly such updates, so the refusal is transient (close 1013): the device reconnects and
 *   re-syncs, by when the server has caught up. Nothing of it is applied meanwhile.
 * - `malformed`: not a decodable Yjs update.
 */
import * as Y from 'yjs';
import { mayWrite, type Owner, type Role } from '../constat/permissions.js';
import { MAX_NESTING_DEPTH, jsonDepthExceeds } from '../constat/nesting.js';

export type Inspection =
  /** `changes`: whether applying it changes anything (new structs or new deletions). */
  | { kind: 'ok'; changes: boolean; roots: ReadonlySet<string>; newClients: readonly number[] }
  | { kind: 'forbidden'; root: string; reason: string }
  | { kind: 'too-deep'; reason: string }
  | { kind: 'retry'; reason: string }
  | { kind: 'malformed'; reason: string };

/**
 * Resolution of a struct to its root: a root name; `null` for content Yjs will discard on
 * integration (placed in or next to collected content); or why it cannot be decided.
 */
type Resolved = string | null | { retry: string } | { malformed: string };

/**
 * A resolution and the nesting level of the item's content: 1 for an entry of a root, one
 * more for each shared type it sits in.
 */
interface Placed {
  root: Resolved;
  level: number;
}

/** One step of the walk towards the root: done, or the next item and whether it is a parent. */
type Step = Placed | { next: Y.Item; up: boolean };

export function inspectUpdate(
  doc: Y.Doc,
  update: Uint8Array,
  sender: Role,
  ownerOf: (client: number) => Owner | undefined,
  /**
   * The party whose presence announced a client id not yet owned: stock clients use their
   * document's client id in presence, so the other party sees it before its first edit and
   * must not be able to introduce it first (the id would be theirs, and the phone's edits
   * under it refused from then on).
   */
  announcedBy: (client: number) => Role | undefined = () => undefined,
): Inspection {
  let decoded: { structs: Array<Y.Item | Y.GC | Y.Skip>; ds: ReturnType<typeof Y.createDeleteSet> };
  try {
    decoded = Y.decodeUpdate(update) as typeof decoded;
  } catch (err) {
    return { kind: 'malformed', reason: `not a Yjs update: ${(err as Error).message}` };
  }
  const store = doc.store;
  const own = indexByClient(decoded.structs);
  const roots = new Set<string>();
  const newClients: number[] = [];
  let changes = false;
  const memo = new Map<Y.Item, Placed>();

  const lookup = (id: Y.ID): Y.Item | Y.GC | 'unknown' => {
    const state = Y.getState(store, id.client);
    if (id.clock < state) {
      const structs = store.clients.get(id.client)!;
      return structs[Y.findIndexSS(structs, id.clock)] as Y.Item | Y.GC;
    }
    const mine = findOwn(own, id);
    return mine && !(mine instanceof Y.Skip) ? mine : 'unknown';
  };

  /** The root of an integrated type, and its level (0 for a root). Iterative: the store may
   * hold a chain deeper than any limit (a document loaded from before the limit existed). */
  const typePlace = (type: Y.AbstractType<unknown>): Placed => {
    let t = type;
    let level = 0;
    while (t._item !== null) {
      t = t._item.parent as Y.AbstractType<unknown>;
      level++;
    }
    return { root: Y.findRootTypeKey(t), level };
  };
  const inside = (type: Y.AbstractType<unknown>, extra = 1): Placed => {
    const place = typePlace(type);
    return { root: place.root, level: place.level + extra };
  };

  /**
   * One step of the resolution, mirroring Yjs's own `Item.getMissing`: either the answer, or
   * the item (of this update) whose root is also this item's root.
   */
  const step = (item: Y.Item): Step => {
    const own = item.id;
    const done = (root: Resolved): Placed => ({ root, level: 0 });
    for (const ref of [
      item.origin,
      item.rightOrigin,
      item.parent instanceof Y.ID ? item.parent : null,
    ]) {
      // Yjs integrates one client's structs in clock order: a reference to a later clock of the
      // same client can never be satisfied and makes Yjs throw while applying.
      if (ref && ref.client === own.client && ref.clock >= own.clock) {
        return done({ malformed: 'reference to a later edit of the same client' });
      }
    }
    const left = item.origin ? lookup(item.origin) : undefined;
    const right = item.rightOrigin ? lookup(item.rightOrigin) : undefined;
    if (left === 'unknown' || right === 'unknown')
      return done({ retry: 'origin not known to the server yet' });
    // Placed next to collected content: Yjs drops the item (integrates it as GC).
    if (left instanceof Y.GC || right instanceof Y.GC) return done(null);
    const parent = item.parent as unknown;
    if (typeof parent === 'string') return { root: parent, level: 1 };
    if (parent instanceof Y.AbstractType) return inside(parent); // already integrated
    if (parent === null || parent === undefined) {
      const neighbour = left ?? right;
      if (!(neighbour instanceof Y.Item))
        return done({ malformed: 'struct with neither parent nor origin' });
      return neighbour.parent instanceof Y.AbstractType
        ? inside(neighbour.parent)
        : { next: neighbour, up: false };
    }
    const parentItem = lookup(parent as Y.ID);
    if (parentItem === 'unknown') return done({ retry: 'parent not known to the server yet' });
    if (parentItem instanceof Y.GC || parentItem.content instanceof Y.ContentDeleted)
      return done(null);
    if (!(parentItem.content instanceof Y.ContentType))
      return done({ malformed: 'parent is not a shared type' });
    // The child lives inside the parent's type, so it belongs to the parent's root.
    return parentItem.parent instanceof Y.AbstractType
      ? inside(parentItem.content.type)
      : { next: parentItem, up: true };
  };

  /** Iterative (a crafted chain must not exhaust the stack), with cycle detection. */
  const resolve = (start: Y.Item): Placed => {
    const chain: Array<{ item: Y.Item; up: boolean }> = [];
    const visiting = new Set<Y.Item>();
    let item = start;
    let result: Placed;
    for (;;) {
      const cached = memo.get(item);
      if (cached !== undefined) {
        result = cached;
        break;
      }
      if (visiting.has(item)) {
        result = { root: { malformed: 'circular reference between structs' }, level: 0 };
        break;
      }
      visiting.add(item);
      const next = step(item);
      if (!('next' in next)) {
        chain.push({ item, up: false });
        result = next;
        break;
      }
      chain.push({ item, up: next.up });
      item = next.next;
    }
    // Levels back from the end of the chain: a step to a parent item is one level out.
    let level = result.level;
    for (let i = chain.length - 1; i >= 0; i--) {
      const link = chain[i]!;
      if (link.up) level++;
      memo.set(link.item, { root: result.root, level });
    }
    if (chain.length > 0) return memo.get(start)!;
    return result;
  };

  const checkDepth = (item: Y.Item, level: number): Inspection | undefined => {
    const content = item.content;
    // A shared type occupies its level; text and scalars add none.
    let deepest = content instanceof Y.ContentType ? level : 0;
    if (content instanceof Y.ContentAny || content instanceof Y.ContentJSON) {
      const values = content.getContent() as unknown[];
      if (values.some((v) => jsonDepthExceeds(v, MAX_NESTING_DEPTH - level + 1)))
        deepest = Infinity;
    } else if (content instanceof Y.ContentEmbed || content instanceof Y.ContentFormat) {
      const value = content instanceof Y.ContentEmbed ? content.embed : content.value;
      if (jsonDepthExceeds(value, MAX_NESTING_DEPTH - level + 1)) deepest = Infinity;
    }
    if (deepest <= MAX_NESTING_DEPTH) return undefined;
    return {
      kind: 'too-deep',
      reason: `content nests deeper than ${MAX_NESTING_DEPTH} levels`,
    };
  };

  const check = (root: string, what: string): Inspection | undefined => {
    if (!mayWrite(sender, root)) {
      return { kind: 'forbidden', root, reason: `party ${sender} may not ${what} "${root}"` };
    }
    roots.add(root);
    return undefined;
  };

  // New structs. Per client, where the next one must start so that nothing is left pending.
  const next = new Map<number, number>();
  for (const struct of decoded.structs) {
    const { client, clock } = struct.id;
    let expected = next.get(client);
    if (expected === undefined) {
      expected = Y.getState(store, client);
      const owner = ownerOf(client);
      // A Skip is owned like any struct: under the other party's id it is what the attack in
      // docs/security.md ("parked deletions") is built from.
      if (clock + struct.length > expected) {
        if (owner === 'server') {
          return { kind: 'forbidden', root: 'meta', reason: 'devices may not write as the server' };
        }
        if (owner !== undefined && owner !== sender) {
          return { kind: 'retry', reason: `edits of party ${owner} must come from party ${owner}` };
        }
        if (owner === undefined) {
          const announcer = announcedBy(client);
          if (announcer !== undefined && announcer !== sender) {
            return {
              kind: 'retry',
              reason: `client ${client} is announced by party ${announcer}`,
            };
          }
          if (!(struct instanceof Y.Skip)) newClients.push(client);
        }
      }
    }
    if (clock + struct.length <= expected) continue; // already known: a duplicate, not a change
    if (clock > expected || struct instanceof Y.Skip) {
      // Yjs would park this struct (and every later one of the client) until the clocks in
      // between arrive, from whoever sends them.
      return { kind: 'retry', reason: `missing earlier edits of client ${client}` };
    }
    next.set(client, clock + struct.length);
    changes = true;
    if (struct instanceof Y.GC) continue; // collected content: occupies clocks, changes nothing
    const placed = resolve(struct);
    const root = placed.root;
    if (root === null) continue;
    if (typeof root === 'object') {
      return 'retry' in root
        ? { kind: 'retry', reason: root.retry }
        : { kind: 'malformed', reason: root.malformed };
    }
    const refusal = check(root, 'write') ?? checkDepth(struct, placed.level);
    if (refusal) return refusal;
  }

  // New deletions: only items that exist and are not deleted yet count (a full delete set is
  // resent on every sync step 2).
  for (const [client, ranges] of decoded.ds.clients) {
    const state = Y.getState(store, client);
    const structs = store.clients.get(client);
    for (const range of ranges) {
      const end = range.clock + range.len;
      if (structs && range.clock < state) {
        for (let i = Y.findIndexSS(structs, range.clock); i < structs.length; i++) {
          const struct = structs[i]!;
          if (struct.id.clock >= end) break;
          if (struct instanceof Y.GC || struct.deleted) continue;
          changes = true;
          const root = resolve(struct as Y.Item).root;
          if (typeof root === 'string') {
            const refusal = check(root, 'delete in');
            if (refusal) return refusal;
          }
        }
      }
      if (end > state) {
        // The rest must be clocks this very update fills (inserted and deleted at once): the
        // structs accepted above, which integrate completely. Anything else would be parked in
        // `pendingDs` and delete whatever arrives under those clocks later.
        if (end > (next.get(client) ?? state)) {
          return { kind: 'retry', reason: 'deletion of content the server does not have' };
        }
      }
    }
  }
  return { kind: 'ok', changes, roots, newClients };
}

function indexByClient(
  structs: Array<Y.Item | Y.GC | Y.Skip>,
): Map<number, Array<Y.Item | Y.GC | Y.Skip>> {
  const byClient = new Map<number, Array<Y.Item | Y.GC | Y.Skip>>();
  for (const s of structs) {
    let list = byClient.get(s.id.client);
    if (!list) byClient.set(s.id.client, (list = []));
    list.push(s);
  }
  return byClient;
}

function findOwn(
  own: Map<number, Array<Y.Item | Y.GC | Y.Skip>>,
  id: Y.ID,
): Y.Item | Y.GC | Y.Skip | undefined {
  const list = own.get(id.client);
  if (!list) return undefined;
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = list[mid]!;
    if (id.clock < s.id.clock) hi = mid - 1;
    else if (id.clock >= s.id.clock + s.length) lo = mid + 1;
    else return s;
  }
  return undefined;
}
