/**
 * Circumstance boxes per form version, kept as data.
 *
 * The list of boxes differs by country and edition, and every stored constat names the form
 * version it was filled with, so a box number only means something together with its version.
 * The `dz` wording (French and Arabic) has not been checked against a printed insurer form: it
 * is data on purpose, so correcting it is an edit here rather than a code change, and the
 * version carries a `note` saying so wherever its labels are shown. The labels of sections and
 * fields the report prints are in form-labels.ts.
 */
import { DZ_FIELD_LABELS, EU_FIELD_LABELS, type FieldLabels } from './form-labels.js';

/** Languages a label may be given in; the first of a version's `languages` is the fallback. */
export type Language = 'fr' | 'ar' | 'en';
export const LANGUAGES: readonly Language[] = ['fr', 'ar', 'en'];

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
  /** The languages the paper form is printed in, main one first (the report prints both). */
  readonly languages: readonly [Language, Language];
  /** Said wherever the labels are shown when their wording was not checked against a printed form. */
  readonly note?: string;
  readonly circumstances: readonly Circumstance[];
  /** Section and field labels the report prints. */
  readonly fields: FieldLabels;
}

/** Numbers boxes from 1 in list order, as printed on the forms. */
function boxes(labels: readonly CircumstanceLabels[]): Circumstance[] {
  return labels.map((l, i) => ({ id: i + 1, labels: l }));
}

const DZ: FormVersion = {
  id: 'dz',
  name: 'Constat amiable automobile — Algérie',
  languages: ['fr', 'ar'],
  note: 'unverified: French and Arabic wording not yet checked against a printed insurer form',
  fields: DZ_FIELD_LABELS,
  circumstances: boxes([
    {
      fr: "Heurtait à l'arrière, même sens, même file",
      ar: 'اصطدم بالمؤخرة، في نفس الاتجاه ونفس المسلك',
    },
    {
      fr: 'Roulait dans le même sens sur une file différente',
      ar: 'كان يسير في نفس الاتجاه في مسلك مختلف',
    },
    { fr: 'Roulait en sens inverse', ar: 'كان يسير في الاتجاه المعاكس' },
    { fr: "Provenait d'une chaussée différente", ar: 'كان قادما من طريق آخر' },
    { fr: 'Venait de droite (carrefour)', ar: 'كان قادما من اليمين (في مفترق طرق)' },
    { fr: "S'engageait sur une place à sens giratoire", ar: 'كان يدخل إلى ساحة دوارة' },
    { fr: 'Roulait sur une place à sens giratoire', ar: 'كان يسير في ساحة دوارة' },
    { fr: 'En stationnement', ar: 'كان متوقفا (في موقف)' },
    { fr: 'Quittait un stationnement', ar: 'كان يغادر موقفا' },
    { fr: 'Prenait un stationnement', ar: 'كان يدخل إلى موقف' },
    { fr: 'Reculait', ar: 'كان يرجع إلى الخلف' },
    { fr: 'Doublait', ar: 'كان يتجاوز' },
    { fr: 'Dépassement irrégulier', ar: 'تجاوز غير قانوني' },
    { fr: 'Changeait de file', ar: 'كان يغير المسلك' },
    { fr: 'Virait à droite', ar: 'كان ينعطف إلى اليمين' },
    { fr: 'Virait à gauche', ar: 'كان ينعطف إلى اليسار' },
    {
      fr: "S'engageait dans un parking, un lieu privé, un chemin de terre",
      ar: 'كان يدخل إلى موقف سيارات أو مكان خاص أو طريق ترابي',
    },
    {
      fr: "Sortait d'un parking, d'un lieu privé, d'un chemin de terre",
      ar: 'كان يخرج من موقف سيارات أو مكان خاص أو طريق ترابي',
    },
    {
      fr: 'Empiétait sur la partie de chaussée réservée au sens inverse',
      ar: 'كان يتعدى على جزء الطريق المخصص للاتجاه المعاكس',
    },
    { fr: 'Roulait en sens interdit', ar: 'كان يسير في اتجاه ممنوع' },
    { fr: "Inobservation d'un signal de priorité", ar: 'عدم احترام إشارة الأولوية' },
    { fr: 'Faisait un demi-tour', ar: 'كان يقوم بنصف دورة' },
    { fr: 'Ouvrait une portière', ar: 'كان يفتح باب المركبة' },
  ]),
};

const EU: FormVersion = {
  id: 'eu',
  name: 'European Accident Statement (2003)',
  languages: ['fr', 'en'],
  fields: EU_FIELD_LABELS,
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

/** A label in `lang`, else in the version's main language (always present). */
export function labelIn(labels: CircumstanceLabels, lang: string): string {
  return (labels as unknown as Partial<Record<string, string>>)[lang] ?? labels.fr;
}

/**
 * Box ids as the strings used for keys of a vehicle's `circumstances` map (Yjs map keys are
 * strings), so a ticked key can be checked without parsing it.
 */
export function circumstanceKeys(version: FormVersion): ReadonlySet<string> {
  return new Set(version.circumstances.map((c) => String(c.id)));
}
