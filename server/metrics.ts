/** Prometheus metrics, one registry per server (so tests can run several in one process). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SyncObserver } from '../sync/ports.js';

export class Metrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({
    name: 'constat_ws_connections',
    help: 'Open device websocket connections',
    registers: [this.registry],
  });
  readonly connectionsRefused = new Counter({
    name: 'constat_ws_connections_refused_total',
    help: 'Websocket connections refused at connect, by close code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly closes = new Counter({
    name: 'constat_ws_closes_total',
    help: 'Websocket connections closed by the server after connect, by close code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly liveSessions = new Gauge({
    name: 'constat_live_sessions',
    help: 'Documents live on this instance',
    registers: [this.registry],
  });
  readonly documentsAsleep: Gauge = new Gauge({
    name: 'constat_documents_asleep',
    help: 'Live documents asleep (idle; encoded, devices still connected)',
    registers: [this.registry],
    collect: (): void => {
      this.documentsAsleep.set(this.#asleep());
    },
  });
  readonly sessionsOpened = new Counter({
    name: 'constat_sessions_opened_total',
    help: 'Sessions opened',
    registers: [this.registry],
  });
  readonly sessionsJoined = new Counter({
    name: 'constat_sessions_joined_total',
    help: 'Sessions joined by party B',
    registers: [this.registry],
  });
  readonly joinFailures = new Counter({
    name: 'constat_join_failures_total',
    help: 'Refused join attempts, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly updates = new Counter({
    name: 'constat_updates_total',
    help: 'Document updates accepted from devices',
    registers: [this.registry],
  });
  readonly updateBytes = new Counter({
    name: 'constat_update_bytes_total',
    help: 'Bytes of accepted updates',
    registers: [this.registry],
  });
  readonly rejectedUpdates = new Counter({
    name: 'constat_rejected_updates_total',
    help: 'Document updates refused, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly pendingDropped = new Counter({
    name: 'constat_pending_dropped_total',
    help: 'Accepted updates that left content pending on the live document (dropped; should stay 0)',
    registers: [this.registry],
  });
  readonly presenceDropped = new Counter({
    name: 'constat_presence_dropped_total',
    help: 'Awareness entries dropped because the connection did not claim their client id',
    labelNames: [] as const,
    registers: [this.registry],
  });
  readonly backgroundFailures = new Counter({
    name: 'constat_background_failures_total',
    help: 'Background tasks (document review, timers, sweeps) that failed and were logged, by task',
    labelNames: ['task'] as const,
    registers: [this.registry],
  });
  readonly limitHits = new Counter({
    name: 'constat_limit_hits_total',
    help: 'Connections closed by a limit, by limit',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  readonly draftFolds = new Histogram({
    name: 'constat_draft_fold_seconds',
    help: "Merging a draft's appended updates into its base (load, merge off the event loop, write)",
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly draftSaves = new Histogram({
    name: 'constat_draft_save_seconds',
    help: 'Draft save duration',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly draftSaveFailures = new Counter({
    name: 'constat_draft_save_failures_total',
    help: 'Failed draft saves',
    registers: [this.registry],
  });

  readonly hubReadLag = new Histogram({
    name: 'constat_hub_read_lag_seconds',
    help: 'Age of a hub entry when it is delivered to this instance',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [this.registry],
  });
  readonly hubStreamsLost = new Counter({
    name: 'constat_hub_streams_lost_total',
    help: 'Update streams found missing in Redis and rebuilt from a live document',
    registers: [this.registry],
  });
  readonly compactions = new Histogram({
    name: 'constat_compaction_seconds',
    help: 'Duration of one session compaction (stream merged into the draft)',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly compactionFailures = new Counter({
    name: 'constat_compaction_failures_total',
    help: 'Failed compactions',
    registers: [this.registry],
  });
  #streamEntries: () => Promise<number> = async () => 0;
  #asleep: () => number = () => 0;
  readonly streamEntries = new Gauge({
    name: 'constat_hub_stream_entries',
    help: 'Entries held in the update streams of the sessions live on this instance',
    registers: [this.registry],
    collect: async () => {
      this.streamEntries.set(await this.#streamEntries());
    },
  });

  readonly sqlStatements = new Counter({
    name: 'constat_sql_statements_total',
    help: 'SQL statements sent to the database',
    registers: [this.registry],
  });
  readonly finalizationGroups = new Histogram({
    name: 'constat_finalization_group_size',
    help: 'Finalizations committed together in one transaction (group commit)',
    buckets: [1, 2, 4, 8, 16, 32],
    registers: [this.registry],
  });
  readonly eventsPublished = new Counter({
    name: 'constat_events_published_total',
    help: 'Outbox events published to Kafka',
    registers: [this.registry],
  });
  readonly kafkaSends = new Counter({
    name: 'constat_kafka_sends_total',
    help: 'Produce requests the outbox relay made (one carries every topic of a batch)',
    registers: [this.registry],
  });
  readonly publishFailures = new Counter({
    name: 'constat_event_publish_failures_total',
    help: 'Failed outbox publish attempts',
    registers: [this.registry],
  });
  readonly eventsReceived = new Counter({
    name: 'constat_events_received_total',
    help: 'Claim events and AI findings stored, by type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly uploadSlots = new Counter({
    name: 'constat_upload_slots_total',
    help: 'Upload slots handed out for photos and papers',
    registers: [this.registry],
  });
  readonly attachmentChecks = new Counter({
    name: 'constat_attachment_checks_total',
    help: 'Stored files read and checked, by outcome (verified, mismatch)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly mediaCleaned = new Counter({
    name: 'constat_media_cleaned_total',
    help: 'Files removed by the cleanup, by reason (attachment: its row went too; orphan: no row)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly subscriptionsCutOff = new Counter({
    name: 'constat_subscriptions_cut_off_total',
    help: 'GraphQL subscriptions ended because their subscriber fell too far behind',
    registers: [this.registry],
  });
  readonly deadLetters = new Counter({
    name: 'constat_dead_letters_total',
    help: 'Messages sent to a dead-letter topic, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  #outbox: () => Promise<{ pending: number; oldestAgeSeconds: number }> = async () => ({
    pending: 0,
    oldestAgeSeconds: 0,
  });
  readonly outboxBacklog = new Gauge({
    name: 'constat_outbox_backlog',
    help: 'Events waiting in the outbox',
    registers: [this.registry],
    collect: async () => {
      const { pending, oldestAgeSeconds } = await this.#outbox().catch(() => ({
        pending: NaN,
        oldestAgeSeconds: NaN,
      }));
      this.outboxBacklog.set(pending);
      this.outboxOldest.set(oldestAgeSeconds);
    },
  });
  readonly outboxOldest = new Gauge({
    name: 'constat_outbox_oldest_seconds',
    help: 'Age of the oldest event waiting in the outbox',
    registers: [this.registry],
  });

  readonly reportRenders = new Histogram({
    name: 'constat_report_render_seconds',
    help: 'Time to render, store and record one PDF report',
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });
  readonly reportFailures = new Counter({
    name: 'constat_report_failures_total',
    help: 'Failed report renders (retried later)',
    registers: [this.registry],
  });
  #reportsPending: () => Promise<number> = async () => 0;
  readonly reportsPending = new Gauge({
    name: 'constat_reports_pending',
    help: 'Reports waiting to be rendered',
    registers: [this.registry],
    collect: async () => {
      this.reportsPending.set(await this.#reportsPending().catch(() => NaN));
    },
  });

  trackReports(measure: () => Promise<number>): void {
    this.#reportsPending = measure;
  }

  trackOutbox(measure: () => Promise<{ pending: number; oldestAgeSeconds: number }>): void {
    this.#outbox = measure;
  }

  trackAsleep(measure: () => number): void {
    this.#asleep = measure;
  }

  /** Sets how the stream-length gauge is measured (at scrape time). */
  trackStreams(measure: () => Promise<number>): void {
    this.#streamEntries = measure;
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  syncObserver(): SyncObserver {
    return {
      updateAccepted: (bytes) => {
        this.updates.inc();
        this.updateBytes.inc(bytes);
      },
      updateRejected: (reason) => {
        this.rejectedUpdates.inc({ reason });
        if (reason === 'too-large') this.limitHits.inc({ limit: 'document-size' });
      },
      draftSaved: (ms) => this.draftSaves.observe(ms / 1000),
      draftSaveFailed: () => this.draftSaveFailures.inc(),
      pendingDropped: () => this.pendingDropped.inc(),
      presenceDropped: (entries) => this.presenceDropped.inc(entries),
      backgroundFailed: (task) => this.backgroundFailures.inc({ task }),
    };
  }
}
