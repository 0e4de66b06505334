/**
 * Prometheus metrics of the webhook channel and the insurers' REST API, registered on the
 * server's registry: attempts by company and outcome, routing-to-delivery latency, endpoints
 * disabled (a gauge per company an operator must look at), and deliveries waiting.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { WebhookObserver } from '../integrations/webhook-channel.js';
import type { FailingEndpoint } from '../persistence/webhook-deliveries-repository.js';

export interface WebhookMetrics {
  observer: WebhookObserver;
  /** Events insurers posted over REST, by outcome (`accepted`, `duplicate`, or the refusal). */
  inbound: Counter<'outcome'>;
}

export function registerWebhookMetrics(
  registry: Registry,
  endpoints: () => Promise<FailingEndpoint[]>,
): WebhookMetrics {
  const attempts = new Counter({
    name: 'constat_webhook_attempts_total',
    help: 'Webhook delivery attempts, by company and outcome (delivered, failed, dead, gone)',
    labelNames: ['company', 'outcome'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'constat_webhook_delivery_seconds',
    help: 'From the event committed to the receiver answering 2xx (retries included)',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600],
    registers: [registry],
  });
  const disabledEvents = new Counter({
    name: 'constat_webhook_endpoints_disabled_total',
    help: 'Webhook endpoints disabled, by reason (gone: 410; failing: for too long)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const disabled: Gauge<'company'> = new Gauge({
    name: 'constat_webhook_endpoint_disabled',
    help: 'Companies whose webhook endpoint is disabled (1), or failing but still tried (0)',
    labelNames: ['company'] as const,
    registers: [registry],
    collect: async () => {
      const rows = await endpoints().catch(() => []);
      disabled.reset();
      pending.reset();
      dead.reset();
      for (const r of rows) {
        if (r.disabledAt || r.failingSince)
          disabled.set({ company: r.company }, r.disabledAt ? 1 : 0);
        pending.set({ company: r.company }, r.pending);
        dead.set({ company: r.company }, r.dead);
      }
    },
  });
  const pending = new Gauge({
    name: 'constat_webhook_pending',
    help: 'Webhook deliveries waiting, per company with a failing or disabled endpoint',
    labelNames: ['company'] as const,
    registers: [registry],
  });
  const dead = new Gauge({
    name: 'constat_webhook_dead_letters',
    help: 'Webhook deliveries dead-lettered (replay with constat deliveries replay)',
    labelNames: ['company'] as const,
    registers: [registry],
  });
  const inbound = new Counter({
    name: 'constat_insurer_events_total',
    help: 'Events insurers posted over REST, by outcome',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  return {
    observer: {
      attempt: (company, outcome) => attempts.inc({ company, outcome }),
      delivered: (_company, seconds) => latency.observe(seconds),
      disabled: (_company, reason) => disabledEvents.inc({ reason }),
    },
    inbound,
  };
}
