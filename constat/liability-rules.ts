/**
 * The liability rule tables, one per form version, as data: the convention cases (`CASES`, what
 * each means and which way it puts the fault) and, per form version, which of its boxes name
 * each case, in the order the cases are tried. Edit here to change a suggestion: docs/report.md
 * explains the format. Box numbers are those of the version's circumstance list
 * (form-versions.ts).
 *
 * The cases follow the French inter-insurer convention table as summarised in the domain notes
 * (no authoritative Algerian table was found): rear-end, lane change, opposite directions,
 * priority from the right, parked vehicle, manoeuvring vehicle; anything contradictory or not
 * covered is shared 50/50. Rules are tried in order and the first that applies wins, so a
 * manoeuvre (reversing, opening a door) outranks the situation boxes ticked with it.
 */

/**
 * - `fault`: the side that ticked one of `boxes` takes 100 %; if both sides did, the case is
 *   contradictory (50/50).
 * - `victim`: the side that ticked one of `boxes` takes 0 % and the other 100 %; both: 50/50.
 * - `shared`: when both sides ticked one of `boxes`, 50/50 (a case the table settles as shared).
 */
export type RuleKind = 'fault' | 'victim' | 'shared';

export interface LiabilityRule {
  /** Stable id, reported with the suggestion (and in the finalized event). */
  readonly id: string;
  readonly kind: RuleKind;
  readonly boxes: readonly number[];
  /** What the case is, in the convention's words. */
  readonly description: string;
}

export interface LiabilityTable {
  readonly formVersion: string;
  /** Where the table comes from and what was not verified. */
  readonly source: string;
  readonly rules: readonly LiabilityRule[];
}

const SOURCE =
  'Convention cases as summarised from the French IRSA table; no authoritative Algerian table was found (unverified).';

/** The convention cases, shared by every table; each table says which of its boxes mean what. */
const CASES: Readonly<Record<string, { kind: RuleKind; description: string }>> = {
  manoeuvring: {
    kind: 'fault',
    description: 'Véhicule en manœuvre (recul, demi-tour, stationnement, portière) : 100 %',
  },
  'wrong-way': { kind: 'fault', description: 'Véhicule circulant en sens interdit : 100 %' },
  'opposite-directions': {
    kind: 'fault',
    description: 'Sens inverses, empiétement sur la partie réservée au sens inverse : 100 %',
  },
  'opposite-directions-unknown': {
    kind: 'shared',
    description: 'Sens inverses, aucun empiétement déclaré : 50/50',
  },
  'irregular-overtaking': { kind: 'fault', description: 'Dépassement irrégulier : 100 %' },
  'lane-change': {
    kind: 'fault',
    description: 'Deux files, le véhicule qui change de file : 100 %',
  },
  'rear-end': {
    kind: 'fault',
    description: "Choc à l'arrière, même sens, même file : le véhicule heurtant 100 %",
  },
  'priority-sign': {
    kind: 'fault',
    description: 'Signal de priorité (ou feu rouge) non observé : 100 %',
  },
  'priority-right': {
    kind: 'victim',
    description: "Carrefour, véhicule venant de droite : l'autre véhicule 100 %",
  },
  roundabout: { kind: 'fault', description: "Giratoire, le véhicule qui s'y engage : 100 %" },
  parked: {
    kind: 'victim',
    description: 'Véhicule en stationnement heurté : le véhicule en mouvement 100 %',
  },
  'different-lanes': {
    kind: 'shared',
    description: 'Deux files, aucun changement de file déclaré : 50/50',
  },
};

/** A table from [case id, boxes] pairs, in the order they are tried. */
function table(
  formVersion: string,
  rules: ReadonlyArray<readonly [string, number[]]>,
): LiabilityTable {
  return {
    formVersion,
    source: SOURCE,
    rules: rules.map(([id, boxes]) => {
      const known = CASES[id];
      if (!known) throw new Error(`liability table ${formVersion}: unknown case ${id}`);
      return { id, boxes, ...known };
    }),
  };
}

const DZ = table('dz', [
  // 9 leaving a parking space, 10 entering one, 11 reversing, 17/18 entering or leaving a car
  // park or track, 22 U-turn, 23 opening a door.
  ['manoeuvring', [9, 10, 11, 17, 18, 22, 23]],
  ['wrong-way', [20]],
  ['opposite-directions', [19]],
  ['opposite-directions-unknown', [3]],
  ['irregular-overtaking', [13]],
  ['lane-change', [14]],
  ['rear-end', [1]],
  ['priority-sign', [21]],
  ['priority-right', [5]],
  ['roundabout', [6]],
  ['parked', [8]],
  ['different-lanes', [2]],
]);

const EU = table('eu', [
  // 2 leaving a parking space / opening a door, 3 entering one, 4/5 car park or track, 14
  // reversing.
  ['manoeuvring', [2, 3, 4, 5, 14]],
  ['opposite-directions', [15]],
  ['lane-change', [10]],
  ['rear-end', [8]],
  ['priority-sign', [17]],
  ['priority-right', [16]],
  ['roundabout', [6]],
  ['parked', [1]],
  ['different-lanes', [9]],
]);

export const LIABILITY_TABLES: readonly LiabilityTable[] = [DZ, EU];
