/**
 * Assembles the webhook delivery channel of one instance: its repository, HTTPS sender (with
 * WEBHOOK_CA_FILE's extra roots) and metrics. Every instance runs one; they share the work
 * through the deliveries' leases.
 */
import { readFileSync } from 'node:fs';
import type postgres from 'postgres';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { WebhookConfig } from './config.js';
import { WebhookChannel } from '../integrations/webhook-channel.js';
import { createWebhookSender } from '../integrations/webhook-sender.js';
import { createWebhookDeliveriesRepository } from '../persistence/webhook-deliveries-repository.js';
import { registerWebhookMetrics, type WebhookMetrics } from './webhook-metrics.js';

export interface Webhooks {
  channel: WebhookChannel;
  metrics: WebhookMetrics;
  close(): Promise<void>;
}

export function startWebhooks(
  settings: WebhookConfig,
  sql: postgres.Sql,
  registry: Registry,
  logger: Logger,
): Webhooks {
  const deliveries = createWebhookDeliveriesRepository(sql);
  const metrics = registerWebhookMetrics(registry, () => deliveries.failing());
  const sender = createWebhookSender({
    timeoutMs: settings.timeoutMs,
    ...(settings.caFile ? { extraCa: readFileSync(settings.caFile, 'utf8') } : {}),
  });
  const channel = new WebhookChannel({
    deliveries,
    send: sender.send,
    settings,
    logger,
    observer: metrics.observer,
  });
  channel.start();
  return {
    channel,
    metrics,
    async close() {
      await channel.close();
      sender.close();
    },
  };
}
