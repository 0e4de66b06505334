/**
 * What a transport does with an outcome, in one place: results to the results sink, function
 * failures and unusable events to the dead-letter sink. Kafka and the embedded feed differ
 * only in their sinks.
 */
import { randomUUID } from 'node:crypto';
import type { CloudEvent } from '../integrations/events.js';
import type { AiMetrics } from './metrics.js';
import type { Outcome } from './pipeline.js';

export interface DeadLetter {
  id: string;
  reason: string;
  error: string;
  fn?: string;
  sourceEventId?: string;
  constatId?: string;
}

export interface AiSinks {
  results(constatId: string, events: CloudEvent[]): Promise<void>;
  deadLetter(letter: DeadLetter): Promise<void>;
}

export async function deliver(outcome: Outcome, sinks: AiSinks, metrics: AiMetrics): Promise<void> {
  if (outcome.kind === 'dead-letter') {
    metrics.deadLetters.inc({ reason: outcome.reason });
    await sinks.deadLetter({
      id: randomUUID(),
      reason: outcome.reason,
      error: outcome.error,
      ...(outcome.sourceEventId ? { sourceEventId: outcome.sourceEventId } : {}),
    });
    return;
  }
  if (outcome.results.length > 0) await sinks.results(outcome.constatId, outcome.results);
  metrics.latency.observe(Math.max(0, Date.now() - outcome.finalizedAt.getTime()) / 1000);
  for (const failure of outcome.failures) {
    metrics.deadLetters.inc({ reason: 'function-failed' });
    await sinks.deadLetter({
      id: randomUUID(),
      reason: 'function-failed',
      error: failure.error,
      fn: failure.fn,
      sourceEventId: outcome.sourceEventId,
      constatId: outcome.constatId,
    });
  }
}
