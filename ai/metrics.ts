/** Prometheus metrics of the AI service: per function time, count and errors; per outcome. */
import { Counter, Histogram, Registry } from 'prom-client';

export class AiMetrics {
  readonly duration: Histogram<'function'>;
  readonly results: Counter<'function'>;
  readonly errors: Counter<'function'>;
  readonly events: Counter<'outcome'>;
  readonly deadLetters: Counter<'reason'>;
  readonly latency: Histogram;

  /** Registers on `registry` (the service's own, or core's when embedded). */
  constructor(readonly registry: Registry = new Registry()) {
    const registers = [registry];
    this.duration = new Histogram({
      name: 'constat_ai_function_seconds',
      help: 'Time one AI function took on one constat',
      labelNames: ['function'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.results = new Counter({
      name: 'constat_ai_function_results_total',
      help: 'Results produced, by function (a replayed constat counts again)',
      labelNames: ['function'] as const,
      registers,
    });
    this.errors = new Counter({
      name: 'constat_ai_function_errors_total',
      help: 'Constats a function threw on (sent to the dead-letter topic)',
      labelNames: ['function'] as const,
      registers,
    });
    this.events = new Counter({
      name: 'constat_ai_events_total',
      help: 'Events read from constats, by outcome (processed, dead-letter, skipped)',
      labelNames: ['outcome'] as const,
      registers,
    });
    this.deadLetters = new Counter({
      name: 'constat_ai_dead_letters_total',
      help: 'Dead letters, by reason',
      labelNames: ['reason'] as const,
      registers,
    });
    this.latency = new Histogram({
      name: 'constat_ai_finalization_to_result_seconds',
      help: 'From finalization (the event time) to the results being handed on',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60],
      registers,
    });
  }
}
