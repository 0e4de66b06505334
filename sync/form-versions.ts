/**
 * Circumstance boxes per form version, kept as data.
 *
 * The list of boxes differs by country and edition, and every stored constat names the form
 * version it was filled with, so a box number only means something together with its version.
 * The `dz` wording has not been checked against a printed insurer form: it is data on purpose,
 * so correcting it is an edit here rather than a code change. Arabic labels are left out until
 * the wording of the bilingual paper form is confirmed.
 */

export interface CircumstanceLabels {
  readonly fr: string;
  readonly en?: string;
  readonly ar?: string;
}

export interface Circumstance {
  readonly id: number;
  readonly labels: CircumstanceLabels;
}

export interface FormVersion {
  /** 'dz' or 'eu' today; a string so new editions are added as data. */
  readonly id: string;
  readonly name: string;
  readonly circumstances: readonly Circumstance[];
}

/** Numbers boxes from 1 in list order, as printed on the forms. */
function boxes(labels: readonly CircumstanceLabels[]): Circumstance[] {
  return labels.map((l, i) => ({ id: i + 1, labels: l }));
}

const DZ: FormVersion = {
  id: 'dz',
  name: 'Constat amiable automobile — Algérie',
  circumstances: boxes([
    { fr: "Heurtait à l'arrière, même sens, même file" },
    { fr: 'Roulait dans le même sens sur une file différente' },
    { fr: 'Roulait en sens inverse' },
    { fr: "Provenait d'une chaussée différente" },
    { fr: 'Venait de droite (carrefour)' },
    { fr: "S'engageait sur une place à sens giratoire" },
    { fr: 'Roulait sur une place à sens giratoire' },
    { fr: 'En stationnement' },
    { fr: 'Quittait un stationnement' },
    { fr: 'Prenait un stationnement' },
    { fr: 'Reculait' },
    { fr: 'Doublait' },
    { fr: 'Dépassement irrégulier' },
    { fr: 'Changeait de file' },
    { fr: 'Virait à droite' },
    { fr: 'Virait à gauche' },
    { fr: "S'engageait dans un parking, un lieu privé, un chemin de terre" },
    { fr: "Sortait d'un parking, d'un lieu privé, d'un chemin de terre" },
    { fr: 'Empiétait sur la partie de chaussée réservée au sens inverse' },
    { fr: 'Roulait en sens interdit' },
    { fr: "Inobservation d'un signal de priorité" },
    { fr: 'Faisait un demi-tour' },
    { fr: 'Ouvrait une portière' },
  ]),
};

const EU: FormVersion = {
  id: 'eu',
  name: 'European Accident Statement (2003)',
  circumstances: boxes([
    { fr: "en stationnement / à l'arrêt", en: 'parked / stationary' },
    {
      fr: 'quittait un stationnement / ouvrait une portière',
      en: 'leaving a parking space / opening a door',
    },
    { fr: 'prenait un stationnement', en: 'entering a parking space' },
    {
      fr: "sortait d'un parking, d'un lieu privé, d'un chemin de terre",
      en: 'emerging from a car park, private grounds, a track',
    },
    {
      fr: "s'engageait dans un parking, un lieu privé, un chemin de terre",
      en: 'entering a car park, private grounds, a track',
    },
    { fr: "s'engageait sur une place à sens giratoire", en: 'entering a roundabout' },
    { fr: 'roulait sur une place à sens giratoire', en: 'circulating in a roundabout' },
    {
      fr: "heurtait à l'arrière, en roulant dans le même sens et sur une même file",
      en: 'striking the rear of the other vehicle, same direction, same lane',
    },
    {
      fr: 'roulait dans le même sens et sur une file différente',
      en: 'same direction, different lane',
    },
    { fr: 'changeait de file', en: 'changing lanes' },
    { fr: 'doublait', en: 'overtaking' },
    { fr: 'virait à droite', en: 'turning right' },
    { fr: 'virait à gauche', en: 'turning left' },
    { fr: 'reculait', en: 'reversing' },
    {
      fr: 'empiétait sur une voie réservée à la circulation en sens inverse',
      en: 'encroaching on the lane for opposite traffic',
    },
    { fr: 'venait de droite (dans un carrefour)', en: 'coming from the right (at a junction)' },
    {
      fr: "n'avait pas observé un signal de priorité ou un feu rouge",
      en: 'had not observed a right-of-way sign or a red light',
    },
  ]),
};

export const FORM_VERSIONS: readonly FormVersion[] = [DZ, EU];

/** New sessions use the Algerian form unless the opener asks for another one. */
export const DEFAULT_FORM_VERSION = 'dz';

export function getFormVersion(id: string): FormVersion | undefined {
  return FORM_VERSIONS.find((v) => v.id === id);
}

/**
 * Box ids as the strings used for keys of a vehicle's `circumstances` map (Yjs map keys are
 * strings), so a ticked key can be checked without parsing it.
 */
export function circumstanceKeys(version: FormVersion): ReadonlySet<string> {
  return new Set(version.circumstances.map((c) => String(c.id)));
}
