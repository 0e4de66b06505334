/**
 * Who may write where. Pure data and one predicate, so the rule is read in one place and
 * unit-tested without a document.
 */
export type Role = 'A' | 'B';
export type Owner = Role | 'server';

const WRITABLE: Readonly<Record<Owner, ReadonlySet<string>>> = {
  A: new Set(['accident', 'sketch', 'vehicleA']),
  B: new Set(['accident', 'sketch', 'vehicleB']),
  // The server writes only its own roots through sync; content is never changed by it.
  server: new Set(['meta', 'signatures']),
};

export function mayWrite(owner: Owner, root: string): boolean {
  return WRITABLE[owner].has(root);
}

export function writableRoots(owner: Owner): readonly string[] {
  return [...WRITABLE[owner]];
}

export function isRole(value: unknown): value is Role {
  return value === 'A' || value === 'B';
}
