/**
 * Which party owns each Yjs client id, kept in the server-owned `meta.clients` map so it
 * travels with the document (drafts, hub, snapshots). See update-inspector.ts for why.
 */
import * as Y from 'yjs';
import type { Owner } from './permissions.js';

const CLIENTS = 'clients';

function clientsMap(doc: Y.Doc): Y.Map<Owner> | undefined {
  const value = doc.getMap('meta').get(CLIENTS);
  return value instanceof Y.Map ? (value as Y.Map<Owner>) : undefined;
}

export function ownerOf(doc: Y.Doc, client: number): Owner | undefined {
  if (client === doc.clientID) return 'server';
  return clientsMap(doc)?.get(String(client));
}

/**
 * Records owners, and this document's own client id as the server's. Runs as one server
 * transaction. The map itself is created when the session is opened, so instances never race
 * to create it (two concurrent creations of one map key would drop one map's entries).
 */
export function recordOwners(
  doc: Y.Doc,
  clients: readonly number[],
  owner: Owner,
  origin: unknown,
): void {
  doc.transact(() => {
    let map = clientsMap(doc);
    if (!map) {
      map = new Y.Map<Owner>();
      doc.getMap('meta').set(CLIENTS, map);
    }
    const self = String(doc.clientID);
    if (map.get(self) !== 'server') map.set(self, 'server');
    for (const client of clients) map.set(String(client), owner);
  }, origin);
}
