/** The company registry: insurers a constat may name; each uid is also a Kafka topic. */
import type postgres from 'postgres';

export interface CompanyRow {
  uid: string;
  name: string;
  kind: string;
  active: boolean;
  /** CloudEvents content mode of core's events on the company's topic. */
  eventMode: 'structured' | 'binary';
}

export interface CompaniesRepository {
  /** Inserts the companies that are missing; never overwrites an operator's edits. */
  seed(companies: ReadonlyArray<{ uid: string; name: string; kind: string }>): Promise<number>;
  list(): Promise<CompanyRow[]>;
}

export function createCompaniesRepository(sql: postgres.Sql): CompaniesRepository {
  return {
    async seed(companies) {
      let inserted = 0;
      for (const c of companies) {
        const rows = await sql`
          insert into companies (uid, name, kind) values (${c.uid}, ${c.name}, ${c.kind})
          on conflict (uid) do nothing
          returning 1
        `;
        inserted += rows.length;
      }
      return inserted;
    },
    async list() {
      return sql<
        CompanyRow[]
      >`select uid, name, kind, active, event_mode as "eventMode" from companies order by uid`;
    },
  };
}
