/**
 * The liability rule tables, one per form version, as data. Edit here to change a suggestion:
 * docs/report.md explains the format. Box numbers are those of the version's circumstance list
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

const DZ: LiabilityTable = {
  formVersion: 'dz',
  source: SOURCE,
  rules: [
    {
      id: 'manoeuvring',
      kind: 'fault',
      // 9 leaving a parking space, 10 entering one, 11 reversing, 17/18 entering or leaving a
      // car park or track, 22 U-turn, 23 opening a door.
      boxes: [9, 10, 11, 17, 18, 22, 23],
      description: 'Véhicule en manœuvre (recul, demi-tour, stationnement, portière) : 100 %',
    },
    {
      id: 'wrong-way',
      kind: 'fault',
      boxes: [20],
      description: 'Véhicule circulant en sens interdit : 100 %',
    },
    {
      id: 'opposite-directions',
      kind: 'fault',
      boxes: [19],
      description: 'Sens inverses, empiétement sur la partie réservée au sens inverse : 100 %',
    },
    {
      id: 'opposite-directions-unknown',
      kind: 'shared',
      boxes: [3],
      description: 'Sens inverses, aucun empiétement déclaré : 50/50',
    },
    {
      id: 'irregular-overtaking',
      kind: 'fault',
      boxes: [13],
      description: 'Dépassement irrégulier : 100 %',
    },
    {
      id: 'lane-change',
      kind: 'fault',
      boxes: [14],
      description: 'Deux files, le véhicule qui change de file : 100 %',
    },
    {
      id: 'rear-end',
      kind: 'fault',
      boxes: [1],
      description: "Choc à l'arrière, même sens, même file : le véhicule heurtant 100 %",
    },
    {
      id: 'priority-sign',
      kind: 'fault',
      boxes: [21],
      description: "Inobservation d'un signal de priorité : 100 %",
    },
    {
      id: 'priority-right',
      kind: 'victim',
      boxes: [5],
      description: "Carrefour, véhicule venant de droite : l'autre véhicule 100 %",
    },
    {
      id: 'roundabout',
      kind: 'fault',
      boxes: [6],
      description: "Giratoire, le véhicule qui s'y engage : 100 %",
    },
    {
      id: 'parked',
      kind: 'victim',
      boxes: [8],
      description: 'Véhicule en stationnement heurté : le véhicule en mouvement 100 %',
    },
    {
      id: 'different-lanes',
      kind: 'shared',
      boxes: [2],
      description: 'Deux files, aucun changement de file déclaré : 50/50',
    },
  ],
};

const EU: LiabilityTable = {
  formVersion: 'eu',
  source: SOURCE,
  rules: [
    {
      id: 'manoeuvring',
      kind: 'fault',
      // 2 leaving a parking space / opening a door, 3 entering one, 4/5 car park or track,
      // 14 reversing.
      boxes: [2, 3, 4, 5, 14],
      description: 'Véhicule en manœuvre (recul, stationnement, portière) : 100 %',
    },
    {
      id: 'opposite-directions',
      kind: 'fault',
      boxes: [15],
      description: 'Empiétement sur la voie réservée au sens inverse : 100 %',
    },
    {
      id: 'lane-change',
      kind: 'fault',
      boxes: [10],
      description: 'Deux files, le véhicule qui change de file : 100 %',
    },
    {
      id: 'rear-end',
      kind: 'fault',
      boxes: [8],
      description: "Choc à l'arrière, même sens, même file : le véhicule heurtant 100 %",
    },
    {
      id: 'priority-sign',
      kind: 'fault',
      boxes: [17],
      description: 'Signal de priorité ou feu rouge non observé : 100 %',
    },
    {
      id: 'priority-right',
      kind: 'victim',
      boxes: [16],
      description: "Carrefour, véhicule venant de droite : l'autre véhicule 100 %",
    },
    {
      id: 'roundabout',
      kind: 'fault',
      boxes: [6],
      description: "Giratoire, le véhicule qui s'y engage : 100 %",
    },
    {
      id: 'parked',
      kind: 'victim',
      boxes: [1],
      description: 'Véhicule en stationnement heurté : le véhicule en mouvement 100 %',
    },
    {
      id: 'different-lanes',
      kind: 'shared',
      boxes: [9],
      description: 'Deux files, aucun changement de file déclaré : 50/50',
    },
  ],
};

export const LIABILITY_TABLES: readonly LiabilityTable[] = [DZ, EU];
