/**
 * Per-request batched loading: whatever fields a query asks for, a page of constats costs one
 * statement for the page and one per kind of related data, never one per constat.
 */
import DataLoader from 'dataloader';
import type {
  ConstatsRepository,
  ConstatStatus,
  StoredConstat,
  Viewer,
} from '../../persistence/constats-repository.js';
import type { TimelineEvent, TimelineRepository } from '../../persistence/timeline-repository.js';
import type {
  DocumentsRepository,
  StoredDocument,
} from '../../persistence/documents-repository.js';

export type VisibleConstat = StoredConstat & { status: ConstatStatus };

export interface Loaders {
  constat: DataLoader<string, VisibleConstat | null>;
  timeline: DataLoader<string, TimelineEvent[]>;
  /** Every rendered version of each constat's report, oldest first. */
  documents: DataLoader<string, StoredDocument[]>;
}

export function createLoaders(
  viewer: Viewer,
  {
    constats,
    timeline,
    documents,
  }: { constats: ConstatsRepository; timeline: TimelineRepository; documents: DocumentsRepository },
): Loaders {
  return {
    documents: new DataLoader(async (ids) => {
      const map = await documents.listFor(ids);
      return ids.map((id) => map.get(id) ?? []);
    }),
    constat: new DataLoader(async (ids) => {
      const rows = await constats.getVisible(viewer, ids);
      const byId = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
    timeline: new DataLoader(async (ids) => {
      const map = await timeline.forConstats(ids);
      return ids.map((id) => map.get(id) ?? []);
    }),
  };
}
