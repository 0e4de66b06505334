/**
 * Finalization: a signed document becomes a constat row plus one outbox event per insurer
 * topic (once if both parties share an insurer) and one for `constats` (AI services), in one
 * transaction (persistence/constats-repository.ts), shared with the other finalizations that
 * arrived while the previous one was committing (group-commit.ts). The decision to finalize is the live
 * document's (sync/finalization.ts); this is the `Finalizer` it calls (README.md).
 */
import type { Finalizer, FinalizeInput } from '../sync/ports.js';
import type {
  ConstatsRepository,
  FinalizeOutcome,
  NewConstat,
  OutboxBuilder,
} from '../persistence/constats-repository.js';
import type { ConstatContent } from '../constat/constat-doc.js';
import type { FinalizedAttachment } from '../media/attachment-service.js';
import {
  cloudEvent,
  CONSTATS_TOPIC,
  eventHeaders,
  EventType,
  type ConstatFinalizedData,
} from '../integrations/events.js';
import { suggestLiabilityFromContent } from '../constat/liability.js';
import { GroupCommit } from './group-commit.js';

/**
 * Constats committed in one transaction at most: the statement's one JSON parameter carries
 * every document of the group, so a group stays a few megabytes.
 */
const MAX_GROUP = 32;

/** The insurer company uid a vehicle section names, if any. */
function insurerOf(section: unknown): string | null {
  const company = (section as { insurer?: { company?: unknown } } | undefined)?.insurer?.company;
  return typeof company === 'string' && company !== '' ? company : null;
}

/** Topics a finalized constat goes to: each distinct insurer, then `constats`. */
export function finalizedTopics(insurerA: string | null, insurerB: string | null): string[] {
  return [...new Set([insurerA, insurerB].filter((t): t is string => t !== null)), CONSTATS_TOPIC];
}

/** Lists the files of the signed content for the event; throws while they cannot be confirmed. */
export interface FinalizationAttachments {
  forFinalization(sessionId: string, content: ConstatContent): Promise<FinalizedAttachment[]>;
}

export interface FinalizerOptions {
  /** Called after a constat was committed (to wake the outbox relay and queue its report). */
  committed?: (constatId: string) => void;
  /**
   * Every file the content names is confirmed in the store first: while the store is
   * unreachable this throws, and the live session retries with backoff (nothing is lost).
   */
  attachments?: FinalizationAttachments;
  /** A transaction committed this many finalizations together (metrics). */
  grouped?: (size: number) => void;
}

export function createFinalizer(
  constats: ConstatsRepository,
  { committed = () => {}, attachments, grouped }: FinalizerOptions = {},
): Finalizer {
  const group = new GroupCommit<{ constat: NewConstat; outbox: OutboxBuilder }, FinalizeOutcome>(
    async (items) => {
      const outcomes = await constats.finalizeMany(items);
      grouped?.(items.length);
      return outcomes;
    },
    MAX_GROUP,
  );
  return {
    async finalize(input: FinalizeInput) {
      const files = attachments
        ? await attachments.forFinalization(input.sessionId, input.content)
        : [];
      const outcome = await group.submit(finalizeItem(input, files));
      if (outcome.kind === 'created') committed(outcome.constatId);
      return outcome;
    },
  };
}

function finalizeItem(
  input: FinalizeInput,
  files: FinalizedAttachment[],
): { constat: NewConstat; outbox: OutboxBuilder } {
  const insurerA = insurerOf(input.content.vehicleA);
  const insurerB = insurerOf(input.content.vehicleB);
  const signedAt = [input.signatures.A.signedAt, input.signatures.B.signedAt].sort().at(-1)!;
  return {
    constat: {
      sessionId: input.sessionId,
      formVersion: input.formVersion,
      content: input.content,
      canonicalJson: input.canonicalJson,
      contentHash: input.contentHash,
      snapshot: input.snapshot,
      signatures: input.signatures,
      insurerA,
      insurerB,
      signedAt,
    },
    outbox: (constatId, parties) => {
      const data: ConstatFinalizedData = {
        constatId,
        sessionId: input.sessionId,
        formVersion: input.formVersion,
        contentHash: input.contentHash,
        content: input.content,
        signatures: (['A', 'B'] as const).map((role) => ({ role, ...input.signatures[role] })),
        parties: {
          A: { userId: parties.a, insurer: insurerA },
          B: { userId: parties.b, insurer: insurerB },
        },
        finalizedAt: new Date().toISOString(),
        ...(files.length > 0 ? { attachments: files } : {}),
      };
      const suggestion = suggestLiabilityFromContent(input.formVersion, input.content);
      if (suggestion) data.liabilitySuggestion = suggestion;
      // One event, one id, sent to several topics: a consumer reading two of them can tell
      // it is the same event.
      const event = cloudEvent(EventType.constatFinalized, constatId, data);
      return {
        topics: finalizedTopics(insurerA, insurerB),
        key: constatId,
        payload: event,
        headers: eventHeaders(event),
      };
    },
  };
}
