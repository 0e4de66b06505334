/**
 * Algerian motor insurers. A company uid is what a vehicle's `insurer.company` field holds and
 * also the name of that insurer's Kafka topic, so uids are lowercase, stable and never reused.
 *
 * Kept as data in code for now; the list is meant to move into a database registry seeded from
 * this array, which is why it carries nothing but plain values.
 */

export type CompanyKind = 'public' | 'mutual' | 'private' | 'takaful';

export interface Company {
  readonly uid: string;
  readonly name: string;
  readonly kind: CompanyKind;
}

export const COMPANIES: readonly Company[] = [
  { uid: 'saa', name: "SAA — Société Nationale d'Assurance", kind: 'public' },
  { uid: 'caat', name: 'CAAT — Compagnie Algérienne des Assurances', kind: 'public' },
  {
    uid: 'caar',
    name: "CAAR — Compagnie Algérienne d'Assurance et de Réassurance",
    kind: 'public',
  },
  { uid: 'cash', name: "CASH — Compagnie d'Assurance des Hydrocarbures", kind: 'public' },
  { uid: 'cnma', name: 'CNMA — Caisse Nationale de Mutualité Agricole', kind: 'mutual' },
  {
    uid: 'maatec',
    name: "MAATEC — mutuelle des travailleurs de l'éducation et de la culture",
    kind: 'mutual',
  },
  {
    uid: 'ciar',
    name: "CIAR — Compagnie Internationale d'Assurance et de Réassurance",
    kind: 'private',
  },
  { uid: '2a', name: '2A — Algérienne des Assurances', kind: 'private' },
  { uid: 'trust', name: 'Trust Algeria', kind: 'private' },
  { uid: 'gam', name: 'GAM — Générale Assurance Méditerranéenne', kind: 'private' },
  { uid: 'alliance', name: 'Alliance Assurances', kind: 'private' },
  { uid: 'salama', name: 'Salama Assurances', kind: 'takaful' },
  { uid: 'axa-dz', name: 'AXA Assurances Algérie Dommage', kind: 'private' },
];

export const COMPANY_UIDS: ReadonlySet<string> = new Set(COMPANIES.map((c) => c.uid));
