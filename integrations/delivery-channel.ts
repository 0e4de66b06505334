/**
 * How core's events leave the outbox: one channel per transport, Kafka and webhooks, behind
 * one interface so the server starts, wakes and stops them alike. Which channel carries a
 * company's events is the company's delivery mode in the registry; the outbox routes each row
 * when it is written (migration 0011), so the channels never decide it themselves.
 */

import type { DeliveryMode } from '../persistence/companies-repository.js';

export type { DeliveryMode };
export const DELIVERY_MODES: readonly DeliveryMode[] = ['kafka', 'webhook', 'both'];

export interface DeliveryChannel {
  readonly name: string;
  /** Delivering (Kafka: once the broker answered; webhooks: once started). */
  readonly ready: boolean;
  /** Starts in the background; failures are retried, never thrown. */
  start(): void;
  /** An outbox row was just committed on this instance: look now rather than at the next poll. */
  wake(): void;
  /** The company registry changed. */
  companiesChanged(): void;
  close(): Promise<void>;
}
