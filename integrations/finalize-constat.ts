/**
 * Finalization: a signed document becomes a constat row plus one outbox event per insurer
 * topic (once if both parties share an insurer) and one for `constats` (AI services), in one
 * transaction (persistence/constats-repository.ts).
 */
import type { Finalizer, FinalizeInput } from '../sync/live-session.js';
import type { ConstatsRepository } from '../persistence/constats-repository.js';
import type { ConstatContent } from '../constat/constat-doc.js';
import type { FinalizedAttachment } from '../media/attachment-service.js';
import {
  cloudEvent,
  CONSTATS_TOPIC,
  eventHeaders,
  EventType,
  type ConstatFinalizedData,
} from './events.js';
import { suggestLiabilityFromContent } from '../constat/liability.js';

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

/**
 * `committed` is called after a constat was committed (to wake the outbox relay and queue its
 * report). With `attachments`, every file the content names is confirmed in the store first:
 * while the store is unreachable this throws, and the live session retries with backoff
 * (nothing is lost).
 */
export function createFinalizer(
  constats: ConstatsRepository,
  committed: (constatId: string) => void = () => {},
  attachments?: FinalizationAttachments,
): Finalizer {
  return {
    async finalize(input: FinalizeInput) {
      const files = attachments
        ? await attachments.forFinalization(input.sessionId, input.content)
        : [];
      const outcome = await finalizeConstat(constats, input, files);
      if (outcome.kind === 'created') committed(outcome.constatId);
      return outcome;
    },
  };
}

function finalizeConstat(
  constats: ConstatsRepository,
  input: FinalizeInput,
  files: FinalizedAttachment[],
) {
  return (async () => {
    const insurerA = insurerOf(input.content.vehicleA);
    const insurerB = insurerOf(input.content.vehicleB);
    const signedAt = [input.signatures.A.signedAt, input.signatures.B.signedAt].sort().at(-1)!;
    return constats.finalize(
      {
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
      (constatId, parties) => {
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
    );
  })();
}
