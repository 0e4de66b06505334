/**
 * The company registry, read from the database (seeded from companies.ts on start) and held
 * in memory for validation; refreshed periodically so an operator's change is picked up.
 */
import type { Logger } from 'pino';
import type { CompaniesRepository, CompanyRow } from '../persistence/companies-repository.js';
import { COMPANIES } from './companies.js';
import type { EventMode } from './cloudevents-binding.js';

export class CompanyRegistry {
  #companies: CompanyRow[] = [];
  #uids: ReadonlySet<string> = new Set();
  #timer: NodeJS.Timeout | undefined;
  #listeners = new Set<() => void>();

  constructor(
    private readonly repository: CompaniesRepository,
    private readonly logger: Logger,
  ) {}

  /** Seeds the missing companies, loads the registry, and refreshes it every `refreshMs`. */
  async start(refreshMs = 60_000): Promise<void> {
    const added = await this.repository.seed(COMPANIES);
    if (added > 0) this.logger.info({ added }, 'company registry seeded');
    await this.refresh();
    this.#timer = setInterval(() => {
      this.refresh().catch((err: unknown) =>
        this.logger.warn({ err }, 'company registry refresh failed'),
      );
    }, refreshMs);
    this.#timer.unref();
  }

  async refresh(): Promise<void> {
    this.#companies = await this.repository.list();
    const uids = new Set(this.#companies.filter((c) => c.active).map((c) => c.uid));
    const changed = uids.size !== this.#uids.size || [...uids].some((u) => !this.#uids.has(u));
    this.#uids = uids;
    if (changed) for (const listener of this.#listeners) listener();
  }

  /** Called whenever the set of active company uids changes. */
  onChange(listener: () => void): void {
    this.#listeners.add(listener);
  }

  /** Active company uids: what `vehicleX.insurer.company` may name, and the insurer topics. */
  uids(): ReadonlySet<string> {
    return this.#uids;
  }

  /** How the company wants core's events on its topic (structured unless it asked for binary). */
  eventMode(uid: string): EventMode {
    return this.#companies.find((c) => c.uid === uid)?.eventMode ?? 'structured';
  }

  list(): readonly CompanyRow[] {
    return this.#companies;
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
