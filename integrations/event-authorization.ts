/**
 * Who may say what about a constat, decided from the message alone (pure, no I/O). An
 * insurer's topic is its identity: Kafka ACLs let a company write to its own topic only, so a
 * claim event counts only on the topic of party A's or party B's insurer, and only if its
 * `source` names that same company. On `ai-results` the `source` must be a registered AI
 * service. Anything else is refused with a reason for the dead-letter topic.
 */
import { AI_RESULTS_TOPIC } from './events.js';

/** The insurers a finalized constat names (company uids; null when a vehicle named none). */
export interface ConstatInsurers {
  insurerA: string | null;
  insurerB: string | null;
}

export type Authorization =
  | { ok: true }
  | {
      ok: false;
      reason: 'not-an-insurer-of-the-constat' | 'source-mismatch' | 'unknown-ai-service';
      error: string;
    };

export function authorizeEvent(
  topic: string,
  event: { source: string; subject: string },
  constat: ConstatInsurers,
  aiServices: ReadonlySet<string>,
): Authorization {
  if (topic === AI_RESULTS_TOPIC) {
    return aiServices.has(event.source)
      ? { ok: true }
      : {
          ok: false,
          reason: 'unknown-ai-service',
          error: `"${event.source}" is not a registered AI service`,
        };
  }
  if (topic !== constat.insurerA && topic !== constat.insurerB) {
    return {
      ok: false,
      reason: 'not-an-insurer-of-the-constat',
      error: `"${topic}" insures neither party of constat ${event.subject}`,
    };
  }
  if (event.source !== topic) {
    return {
      ok: false,
      reason: 'source-mismatch',
      error: `source "${event.source}" on the topic of "${topic}"`,
    };
  }
  return { ok: true };
}
