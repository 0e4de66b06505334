/**
 * The webhook channel: POSTs each delivery's CloudEvent (structured mode) to its company's
 * HTTPS endpoint, signed per Standard Webhooks, with the retry schedule of webhook-retry.ts.
 *
 * Isolation: every company has its own slots (`concurrencyPerCompany` deliveries in flight),
 * and the loop never waits for an HTTP answer — it claims, starts the sends and moves on, so an
 * endpoint that takes its full timeout only ever occupies its own slots. Kafka is another
 * channel with its own loop and is not touched by anything here.
 *
 * Ordering: one delivery in flight per (company, constat), the oldest first (the repository's
 * claim), so a constat's events arrive in the order they were committed.
 */
import type { Logger } from 'pino';
import type {
  ClaimedDelivery,
  WebhookDeliveriesRepository,
  WebhookEndpoint,
} from '../persistence/webhook-deliveries-repository.js';
import type { DeliveryChannel } from './delivery-channel.js';
import { PollLoop } from './poll-loop.js';
import { classifyStatus, nextAttemptDelay, type AttemptResult } from './webhook-retry.js';
import { activeSecrets, signatureHeaders } from './webhook-signature.js';
import type { WebhookSend } from './webhook-sender.js';

export interface WebhookSettings {
  /** Delay before each attempt, the first included (webhook-retry.ts). */
  retryScheduleMs: readonly number[];
  timeoutMs: number;
  concurrencyPerCompany: number;
  /** An endpoint failing without a success for this long is disabled. */
  disableAfterMs: number;
  maxRetryAfterMs: number;
  pollMs: number;
}

export interface WebhookObserver {
  attempt(company: string, outcome: 'delivered' | 'failed' | 'dead' | 'gone'): void;
  /** From the outbox row's routing to the receiver's 2xx. */
  delivered(company: string, seconds: number): void;
  disabled(company: string, reason: string): void;
}

export interface WebhookChannelOptions {
  deliveries: WebhookDeliveriesRepository;
  send: WebhookSend;
  settings: WebhookSettings;
  logger: Logger;
  observer?: WebhookObserver;
}

export class WebhookChannel implements DeliveryChannel {
  readonly name = 'webhook';
  readonly #opts: WebhookChannelOptions;
  readonly #log: Logger;
  readonly #loop: PollLoop;
  /** Deliveries in flight per company. */
  readonly #inFlight = new Map<string, number>();
  readonly #sends = new Set<Promise<void>>();
  #started = false;

  constructor(opts: WebhookChannelOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'webhook-channel' });
    this.#loop = new PollLoop({
      step: () => this.#dispatch(),
      pollMs: opts.settings.pollMs,
      backoff: { firstMs: 500, maxMs: 30_000 },
      onError: (err, failures) =>
        this.#log.warn({ err: (err as Error).message, failures }, 'webhook dispatch failed'),
    });
  }

  get ready(): boolean {
    return this.#started;
  }

  start(): void {
    this.#started = true;
    this.#loop.start();
  }

  wake(): void {
    this.#loop.wake();
  }

  companiesChanged(): void {
    // Endpoints are read at each claim: a changed URL or secret applies to the next attempt.
    this.#loop.wake();
  }

  /** One round: claims for every company with work due and free slots; returns sends started. */
  async #dispatch(): Promise<number> {
    const { deliveries, settings } = this.#opts;
    let started = 0;
    for (const company of await deliveries.dueCompanies(500)) {
      const free = settings.concurrencyPerCompany - (this.#inFlight.get(company) ?? 0);
      if (free <= 0) continue;
      // Held well past the send's own time limit, so no other instance takes it meanwhile.
      const claimed = await deliveries.claim(company, free, settings.timeoutMs + 30_000);
      if (!claimed.endpoint) continue;
      for (const delivery of claimed.deliveries) {
        this.#track(company, this.#deliver(claimed.endpoint, delivery));
        started++;
      }
    }
    return started;
  }

  #track(company: string, send: Promise<void>): void {
    this.#inFlight.set(company, (this.#inFlight.get(company) ?? 0) + 1);
    const done = send
      .catch((err: unknown) =>
        this.#log.error({ err, company }, 'webhook delivery bookkeeping failed'),
      )
      .finally(() => {
        const left = (this.#inFlight.get(company) ?? 1) - 1;
        if (left > 0) this.#inFlight.set(company, left);
        else this.#inFlight.delete(company);
        this.#sends.delete(done);
        // A slot is free and the constat's next event may now go.
        this.#loop.wake();
      });
    this.#sends.add(done);
  }

  async #deliver(endpoint: WebhookEndpoint, delivery: ClaimedDelivery): Promise<void> {
    const { settings, deliveries, observer } = this.#opts;
    const body = JSON.stringify(delivery.payload);
    const result = await this.#attempt(endpoint, delivery, body);
    const company = delivery.company;
    const log = this.#log.child({ company, deliveryId: delivery.id, eventId: delivery.eventId });
    switch (result.kind) {
      case 'delivered':
        await deliveries.delivered(delivery.id, result.status);
        await deliveries.endpointSucceeded(company);
        observer?.attempt(company, 'delivered');
        observer?.delivered(company, (Date.now() - delivery.createdAt.getTime()) / 1000);
        log.debug({ attempts: delivery.attempts + 1 }, 'webhook delivered');
        return;
      case 'gone':
        // The delivery waits (not dead): an operator who re-enables the endpoint gets it.
        await deliveries.failed(delivery.id, {
          status: result.status,
          error: 'HTTP 410: endpoint gone',
          retryInMs: 0,
        });
        await deliveries.disableEndpoint(company, 'HTTP 410 Gone');
        observer?.attempt(company, 'gone');
        observer?.disabled(company, 'gone');
        log.warn('webhook endpoint answered 410 Gone: disabled');
        return;
      case 'failed': {
        const retryInMs = nextAttemptDelay(
          settings.retryScheduleMs,
          delivery.attempts + 1,
          result.retryAfterMs,
        );
        await deliveries.failed(delivery.id, { ...result, retryInMs });
        observer?.attempt(company, retryInMs === null ? 'dead' : 'failed');
        const { disabled } = await deliveries.endpointFailed(company, settings.disableAfterMs);
        if (disabled) observer?.disabled(company, 'failing');
        log.warn(
          { status: result.status, err: result.error, attempts: delivery.attempts + 1, retryInMs },
          retryInMs === null ? 'webhook delivery dead-lettered' : 'webhook delivery failed',
        );
      }
    }
  }

  async #attempt(
    endpoint: WebhookEndpoint,
    delivery: ClaimedDelivery,
    body: string,
  ): Promise<AttemptResult> {
    const secrets = activeSecrets(endpoint.secrets);
    if (secrets.length === 0) {
      return { kind: 'failed', status: null, error: 'the company has no webhook secret' };
    }
    const sent = await this.#opts.send({
      url: endpoint.url,
      body,
      headers: {
        'content-type': 'application/cloudevents+json',
        ...signatureHeaders(secrets, delivery.eventId, body),
      },
    });
    if (sent.status === null) return { kind: 'failed', status: null, error: sent.error };
    return classifyStatus(sent.status, sent.retryAfter, this.#opts.settings.maxRetryAfterMs);
  }

  async close(): Promise<void> {
    await this.#loop.close();
    // Sends under way finish (each within its time limit) so their outcome is recorded.
    await Promise.allSettled([...this.#sends]);
  }
}
