/**
 * Claim events an insurer POSTs to `/v1/insurers/{uid}/events`: the same decision as the Kafka
 * consumer (`decideEvent`: validation, authorization, unknown constats) and the same store
 * (`storeEvent`: idempotent by event id), with the company the caller authenticated as in the
 * place of the topic — on Kafka the topic is the sender's identity, here its token is.
 *
 * What the consumer would dead-letter is answered with the reason instead: the sender still
 * holds the event and learns at once what is wrong (and it is counted with the dead letters).
 */
import type { TimelineRepository } from '../persistence/timeline-repository.js';
import { decodeHttpEvents } from './cloudevents-binding.js';
import type { ConstatInsurers } from './event-authorization.js';
import { decideEvent, storeEvent } from './event-consumer.js';
import { InvalidEvent, type EventValidator } from './event-validator.js';
import type { CloudEvent } from './events.js';

export interface InboundDeps {
  validator: EventValidator;
  timeline: TimelineRepository;
  constatInsurers: (id: string) => Promise<ConstatInsurers | null>;
  onStored?: (event: CloudEvent) => void;
  onRefused?: (reason: string) => void;
}

export interface InboundAnswer {
  status: 200 | 202 | 400 | 403 | 404 | 409;
  body: {
    id?: string;
    status: 'accepted' | 'duplicate' | 'refused';
    reason?: string;
    error?: string;
  };
}

/** HTTP status per refusal reason (docs/integration.md). */
const REFUSAL_STATUS: Record<string, InboundAnswer['status']> = {
  'unknown-constat': 404,
  'not-an-insurer-of-the-constat': 409,
  'source-mismatch': 403,
};

export async function receiveInsurerEvent(
  company: string,
  headers: Headers,
  body: string,
  deps: InboundDeps,
): Promise<InboundAnswer> {
  const decode = () => {
    const events = decodeHttpEvents(headers, body);
    if (events.length !== 1) {
      throw new InvalidEvent('invalid-envelope', 'send one event per request (no batches)');
    }
    return events[0];
  };
  // Only claim events come this way; AI findings have no REST door.
  const disposition = await decideEvent(
    company,
    decode,
    deps.validator,
    deps.constatInsurers,
    new Set(),
  );
  switch (disposition.kind) {
    case 'skip':
      // On a topic, core skips its own events; from an insurer, `constat-core` is a lie.
      deps.onRefused?.('source-mismatch');
      return refusal(403, 'source-mismatch', `source "constat-core" from "${company}"`);
    case 'dead-letter':
      deps.onRefused?.(disposition.reason);
      return refusal(
        REFUSAL_STATUS[disposition.reason] ?? 400,
        disposition.reason,
        disposition.error,
      );
    case 'store': {
      const { event } = disposition;
      const stored = await storeEvent(deps.timeline, company, event);
      if (stored) deps.onStored?.(event);
      return stored
        ? { status: 202, body: { id: event.id, status: 'accepted' } }
        : { status: 200, body: { id: event.id, status: 'duplicate' } };
    }
  }
}

function refusal(status: InboundAnswer['status'], reason: string, error: string): InboundAnswer {
  return { status, body: { status: 'refused', reason, error } };
}
