/**
 * One finalized constat in, one result per function out. The same for every transport (Kafka
 * or the embedded outbox feed): parse and check the event, then run each function, or reuse
 * the result stored the first time (a redelivered event republishes the very same events:
 * same id, same content). A function that throws is reported and the others still run; an
 * event that cannot be used is a dead letter. Only infrastructure errors (the AI database
 * down) are thrown, for the transport to retry.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import {
  EventType,
  cloudEvent,
  type CloudEvent,
  type ConstatFinalizedData,
} from '../integrations/events.js';
import { InvalidEvent, type EventValidator } from '../integrations/event-validator.js';
import { viewOf } from './constat-view.js';
import type { AiFunction, FunctionContext } from './functions.js';
import type { AiMetrics } from './metrics.js';
import type { AiStore } from './store.js';

export interface FunctionFailure {
  fn: string;
  error: string;
}

export type Outcome =
  | {
      kind: 'processed';
      constatId: string;
      sourceEventId: string;
      finalizedAt: Date;
      results: CloudEvent[];
      failures: FunctionFailure[];
    }
  | { kind: 'dead-letter'; reason: string; error: string; sourceEventId?: string };

/** A result's id: a UUID derived from the function and the constat, the same on every run. */
export function resultId(fn: string, constatId: string): string {
  const h = createHash('sha256').update(`constat-ai:${fn}:${constatId}`).digest('hex');
  // Version 8 (custom) UUID layout, variant 10.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export interface PipelineOptions {
  functions: AiFunction[];
  store: AiStore;
  validator: EventValidator;
  metrics: AiMetrics;
  logger: Logger;
}

export class AiPipeline {
  readonly #opts: PipelineOptions;
  readonly #log: Logger;

  constructor(opts: PipelineOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'ai-pipeline' });
  }

  get functions(): readonly AiFunction[] {
    return this.#opts.functions;
  }

  async process(value: Buffer | string | null): Promise<Outcome> {
    let event: CloudEvent;
    try {
      event = this.#opts.validator.parse(
        typeof value === 'string' ? Buffer.from(value, 'utf8') : value,
      );
    } catch (err) {
      if (err instanceof InvalidEvent) return this.#dead(err.reason, err.message);
      throw err;
    }
    if (event.type !== EventType.constatFinalized)
      return this.#dead('unexpected-type', `"${event.type}" does not belong on constats`, event.id);
    const data = event.data as ConstatFinalizedData;
    const view = viewOf(data);
    const earlier = new Map<string, unknown>();
    const results: CloudEvent[] = [];
    const failures: FunctionFailure[] = [];
    const { store, metrics } = this.#opts;
    const done = await store.results(view.constatId);
    for (const fn of this.#opts.functions) {
      const ctx = { view, event: data, store, earlier };
      // A function with items (OCR: one per paper) runs them at once (its own limits queue
      // them) and keeps and reuses each item's result on its own.
      const keys = fn.items
        ? fn.items(ctx).map((item) => ({ key: `${fn.name}:${item}`, item }))
        : [];
      const runs = fn.items
        ? await Promise.all(
            keys.map(({ key, item }) => this.#runOnce(fn, key, { ...ctx, item }, done)),
          )
        : [await this.#runOnce(fn, fn.name, ctx, done)];
      for (const run of runs) {
        if (run.result) results.push(run.result);
        if (run.failure) failures.push(run.failure);
      }
      const outs = runs.filter((r) => r.result).map((r) => r.data);
      if (fn.items) earlier.set(fn.name, outs);
      else if (runs[0]!.result) earlier.set(fn.name, outs[0]);
    }
    metrics.events.inc({ outcome: 'processed' });
    return {
      kind: 'processed',
      constatId: view.constatId,
      sourceEventId: event.id,
      finalizedAt: view.finalizedAt,
      results,
      failures,
    };
  }

  /** Runs one function (or one item of it), or reuses its stored result. */
  async #runOnce(
    fn: AiFunction,
    key: string,
    ctx: FunctionContext,
    done: Map<string, { event: Record<string, unknown> }>,
  ): Promise<{ result?: CloudEvent; data?: unknown; failure?: FunctionFailure }> {
    const { store, metrics } = this.#opts;
    const constatId = ctx.view.constatId;
    const stored = done.get(key);
    if (stored) {
      return {
        result: stored.event as unknown as CloudEvent,
        data: (stored.event as { data?: unknown }).data,
      };
    }
    const end = metrics.duration.startTimer({ function: fn.name });
    let data: Record<string, unknown>;
    try {
      data = await fn.run(ctx);
    } catch (err) {
      end();
      metrics.errors.inc({ function: fn.name });
      const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      this.#log.warn({ constatId, fn: key, error }, 'AI function failed');
      return { failure: { fn: key, error } };
    }
    end();
    const id = resultId(key, constatId);
    const built = cloudEvent(fn.eventType, constatId, data, { source: fn.service, id });
    const kept = await store.keepResult(key, constatId, {
      eventId: id,
      event: built as unknown as Record<string, unknown>,
    });
    metrics.results.inc({ function: fn.name });
    return {
      result: kept.event as unknown as CloudEvent,
      data: (kept.event as { data?: unknown }).data,
    };
  }

  #dead(reason: string, error: string, sourceEventId?: string): Outcome {
    this.#opts.metrics.events.inc({ outcome: 'dead-letter' });
    return { kind: 'dead-letter', reason, error, ...(sourceEventId ? { sourceEventId } : {}) };
  }
}
