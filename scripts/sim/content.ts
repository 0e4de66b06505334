/**
 * What two drivers write into a constat, drawn from a seeded generator: plausible Algerian
 * names, places, plates and policies, a few ticked circumstances and a sketch. Every value
 * passes the server's validation (constat/validate-content.ts), so a simulated pair can sign.
 *
 * The form is filled as a list of small actions per device, run with pauses in between the
 * way a person fills a form on a phone: pickers and toggles set whole fields at once, text is
 * typed a character per update, sketch strokes grow a point per update, boxes are ticked one
 * by one.
 */
import * as Y from 'yjs';
import type { JsonObject } from '../../constat/canonical-json.js';
import { materialise, type ConstatContent, type RootName } from '../../constat/constat-doc.js';
import { typeText, writeSection } from '../../client/writer.js';
import { getFormVersion } from '../../constat/form-versions.js';
import type { Random } from './random.js';
import type { Role } from '../../client/graphql.js';

export type FillAction =
  /** Pickers, toggles, dates: one transaction. */
  | { kind: 'set'; root: RootName; plain: JsonObject; what: string }
  /** Typing into a text field: one update per character. */
  | { kind: 'type'; root: RootName; path: string[]; text: string; what: string }
  /** Ticking one circumstance box. */
  | { kind: 'tick'; vehicle: 'vehicleA' | 'vehicleB'; box: string; what: string }
  /** A finger stroke on the sketch: the element, then one update per point. */
  | { kind: 'stroke'; id: string; points: number[]; what: string };

export interface PairScript {
  /** Actions of device A and device B, run concurrently. */
  A: FillAction[];
  B: FillAction[];
  insurers: { A: string; B: string };
}

const LAST_NAMES = [
  'Haddad',
  'Mansouri',
  'Benali',
  'Boudiaf',
  'Cherif',
  'Djebbar',
  'Ferhat',
  'Guerroudj',
  'Hamidi',
  'Kaci',
  'Larbi',
  'Meziane',
  'Nait',
  'Ouali',
  'Rahmani',
  'Saadi',
  'Taleb',
  'Zerrouki',
];
const FIRST_NAMES = [
  'Samir',
  'Leila',
  'Karim',
  'Amina',
  'Yacine',
  'Nadia',
  'Mourad',
  'Sofia',
  'Rachid',
  'Imane',
  'Walid',
  'Meriem',
  'Farid',
  'Lina',
  'Omar',
  'Yasmine',
  'Hakim',
  'Sarah',
];
const PLACES: Array<{ wilaya: string; commune: string; streets: string[] }> = [
  {
    wilaya: '16',
    commune: 'Bab Ezzouar',
    streets: ['Boulevard Mohamed Boudiaf', 'Rue des Frères Bouadou'],
  },
  { wilaya: '16', commune: 'Kouba', streets: ['Avenue de l’ALN', 'Rue Garidi'] },
  { wilaya: '31', commune: 'Oran', streets: ['Boulevard de la Soummam', 'Rue Larbi Ben M’hidi'] },
  { wilaya: '25', commune: 'Constantine', streets: ['Rue Abane Ramdane', 'Avenue Aouati Mostefa'] },
  { wilaya: '09', commune: 'Blida', streets: ['Boulevard Larbi Tebessi', 'Rue des Martyrs'] },
  { wilaya: '06', commune: 'Béjaïa', streets: ['Boulevard de la Liberté', 'Rue Hamadi Krim'] },
  { wilaya: '19', commune: 'Sétif', streets: ['Avenue du 8 Mai 1945', 'Rue Ahmed Aggoun'] },
];
const VEHICLES: Array<[string, string]> = [
  ['Renault', 'Symbol'],
  ['Hyundai', 'Accent'],
  ['Peugeot', '208'],
  ['Dacia', 'Logan'],
  ['Volkswagen', 'Polo'],
  ['Kia', 'Picanto'],
  ['Toyota', 'Corolla'],
  ['Seat', 'Ibiza'],
  ['Fiat', 'Tipo'],
  ['Chery', 'Tiggo 2'],
];
const DAMAGE = [
  'Pare-chocs avant enfoncé',
  'Coffre et feu arrière gauche cassés',
  'Aile droite rayée',
  'Portière conducteur enfoncée',
  'Rétroviseur gauche arraché',
  'Phare avant droit brisé',
];
const REMARKS = [
  '',
  "J'étais arrêté au feu rouge.",
  'Chaussée mouillée.',
  "L'autre véhicule a freiné brusquement.",
  'Visibilité réduite.',
];
const AGENCIES = ['Agence centre', 'Agence Hussein Dey', 'Agence Oran Centre', 'Agence El Harrach'];

const DAY = 86_400_000;
const isoDay = (t: number) => new Date(t).toISOString().slice(0, 10);
const two = (n: number) => String(n).padStart(2, '0');

/** The boxes of the form version, as map keys. */
function boxes(formVersion: string): string[] {
  const version = getFormVersion(formVersion);
  if (!version) throw new Error(`unknown form version ${formVersion}`);
  return version.circumstances.map((c) => String(c.id));
}

function person(rng: Random) {
  return { lastName: rng.pick(LAST_NAMES), firstName: rng.pick(FIRST_NAMES) };
}

function plate(rng: Random, now: Date): string {
  const yy = rng.int(0, now.getUTCFullYear() % 100);
  return `${rng.int(1, 99_999)}-${rng.pick([1, 1, 1, 3])}${two(yy)}-${two(rng.int(1, 58))}`;
}

/** One vehicle's actions: pickers first, then typing, then the boxes, as a driver would. */
function vehicleActions(
  rng: Random,
  role: Role,
  insurer: string,
  accidentDay: number,
  formVersion: string,
  now: Date,
  ring?: RingMember,
): FillAction[] {
  const root = `vehicle${role}` as const;
  const holder = person(rng);
  const driver = rng.chance(0.8) ? holder : person(rng);
  const [make, model] = rng.pick(VEHICLES);
  // A ring's policies are taken out just before the staged accident.
  const validFrom = accidentDay - (ring ? rng.int(1, 10) : rng.int(10, 300)) * DAY;
  const birth = Date.UTC(rng.int(1960, 2003), rng.int(0, 11), rng.int(1, 28));
  const licence = birth + rng.int(18, 30) * 365 * DAY;
  const ticked = ring ? [ring.box] : rng.shuffle(boxes(formVersion)).slice(0, rng.int(0, 3));
  const place = rng.pick(PLACES);
  const actions: FillAction[] = [
    {
      kind: 'set',
      root,
      what: 'vehicle and insurance pickers',
      plain: {
        vehicle: { make, model, plate: ring?.plate ?? plate(rng, now), plateCountry: 'DZ' },
        insurer: {
          company: insurer,
          policyNumber: `${insurer.toUpperCase()}-${rng.int(2020, 2025)}-${rng.int(1000, 999_999)}`,
          validFrom: isoDay(validFrom),
          validTo: isoDay(validFrom + 364 * DAY),
          coversOwnDamage: rng.chance(0.4),
        },
        policyholder: {
          phone: ring?.phone ?? `0${rng.pick([5, 6, 7])}${rng.int(10_000_000, 99_999_999)}`,
        },
        driver: {
          birthDate: isoDay(birth),
          licenceNumber: ring?.licence ?? String(rng.int(100_000_000, 999_999_999)),
          licenceCategory: 'B',
          licenceIssuedOn: isoDay(licence),
          // Renewed every ten years: still valid on the day of the accident.
          licenceValidUntil: isoDay(accidentDay + rng.int(30, 3_600) * DAY),
        },
        impactPoint: {
          x: Math.round(rng.next() * 100) / 100,
          y: Math.round(rng.next() * 100) / 100,
          side: rng.pick(['front', 'rear', 'left', 'right']),
        },
      },
    },
    {
      kind: 'type',
      root,
      path: ['policyholder', 'lastName'],
      text: holder.lastName,
      what: 'policyholder name',
    },
    {
      kind: 'type',
      root,
      path: ['policyholder', 'firstName'],
      text: holder.firstName,
      what: 'policyholder first name',
    },
    {
      kind: 'type',
      root,
      path: ['policyholder', 'address'],
      text: `${rng.int(1, 120)} ${rng.pick(place.streets)}, ${place.commune}`,
      what: 'policyholder address',
    },
    { kind: 'type', root, path: ['insurer', 'agency'], text: rng.pick(AGENCIES), what: 'agency' },
    {
      kind: 'type',
      root,
      path: ['driver', 'lastName'],
      text: driver.lastName,
      what: 'driver name',
    },
    {
      kind: 'type',
      root,
      path: ['driver', 'firstName'],
      text: driver.firstName,
      what: 'driver first name',
    },
    {
      kind: 'type',
      root,
      path: ['comingFrom'],
      text: rng.pick(PLACES).commune,
      what: 'coming from',
    },
    { kind: 'type', root, path: ['goingTo'], text: rng.pick(PLACES).commune, what: 'going to' },
    { kind: 'type', root, path: ['visibleDamage'], text: rng.pick(DAMAGE), what: 'visible damage' },
  ];
  for (const box of ticked) {
    actions.push({ kind: 'tick', vehicle: root, box, what: `circumstance box ${box}` });
  }
  actions.push({
    kind: 'set',
    root,
    plain: { circumstanceCount: ticked.length },
    what: 'number of ticked boxes',
  });
  const remark = rng.pick(REMARKS);
  if (remark)
    actions.push({ kind: 'type', root, path: ['remarks'], text: remark, what: 'remarks' });
  return actions;
}

function strokePoints(rng: Random): number[] {
  const n = rng.int(6, 18);
  let x = rng.float(0.1, 0.9);
  let y = rng.float(0.1, 0.9);
  const points: number[] = [];
  for (let i = 0; i < n; i++) {
    x = Math.min(1, Math.max(0, x + rng.float(-0.04, 0.04)));
    y = Math.min(1, Math.max(0, y + rng.float(-0.04, 0.04)));
    points.push(Math.round(x * 1000) / 1000, Math.round(y * 1000) / 1000);
  }
  return points;
}

/**
 * A small ring of people who stage accidents together, for `--fraud-rate`: suspicious pairs
 * draw both parties from it, so plates, licences and phone numbers recur and the same two
 * parties meet again; their policies are days old, they declare late, at night, without a
 * witness, one of them "parked".
 */
interface RingMember {
  plate: string;
  licence: string;
  phone: string;
  box: string;
}
const RING: ReadonlyArray<Omit<RingMember, 'box'>> = [
  { plate: '31313-112-16', licence: '161616161', phone: '0551313131' },
  { plate: '42424-113-16', licence: '162626262', phone: '0662424242' },
  { plate: '53535-114-09', licence: '091919191', phone: '0773535353' },
];
/** "Parked" for the party hit, "reversing" for the other (dz form: boxes 8 and 11). */
const RING_BOXES: Record<string, { A: string; B: string }> = {
  dz: { A: '11', B: '8' },
  eu: { A: '14', B: '1' },
};

/**
 * The whole fill of one pair. A takes the date, time, place and its vehicle; B the witnesses,
 * its vehicle and a correction to the address A typed; both draw on the sketch at once.
 */
export function pairScript(
  rng: Random,
  knownInsurers: readonly string[],
  opts: { formVersion?: string; now?: Date; suspicious?: boolean } = {},
): PairScript {
  const formVersion = opts.formVersion ?? 'dz';
  const now = opts.now ?? new Date();
  const suspicious = opts.suspicious === true;
  // A day or more back: never "in the future" wherever the server's day is taken. A ring
  // declares past the 7-day deadline.
  const accidentDay =
    Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) -
    (suspicious ? rng.int(9, 20) : rng.int(1, 60)) * DAY;
  const ringBoxes = RING_BOXES[formVersion] ?? RING_BOXES.dz!;
  // Drawn only for a suspicious pair, so honest pairs of a seed stay what they were.
  const members = suspicious ? rng.shuffle([...RING]) : [];
  const ring = suspicious
    ? { A: { ...members[0]!, box: ringBoxes.A }, B: { ...members[1]!, box: ringBoxes.B } }
    : undefined;
  const insurers = { A: rng.pick(knownInsurers), B: rng.pick(knownInsurers) };
  const place = rng.pick(PLACES);
  const A: FillAction[] = [
    {
      kind: 'set',
      root: 'accident',
      what: 'date, time and place pickers',
      plain: {
        date: isoDay(accidentDay),
        time: suspicious
          ? `${two(rng.pick([22, 23, 0, 1, 2, 3]))}:${two(rng.int(0, 59))}`
          : `${two(rng.int(0, 23))}:${two(rng.int(0, 59))}`,
        place: {
          country: 'DZ',
          wilaya: place.wilaya,
          gps: {
            lat: Math.round((36 + rng.next()) * 10_000) / 10_000,
            lon: Math.round((3 + rng.next()) * 10_000) / 10_000,
            accuracyM: rng.int(3, 30),
          },
        },
        injuries: suspicious ? false : rng.chance(0.1),
        otherVehicleDamage: false,
        objectDamage: rng.chance(0.2),
      },
    },
    {
      kind: 'type',
      root: 'accident',
      path: ['place', 'commune'],
      text: place.commune,
      what: 'commune',
    },
    {
      kind: 'type',
      root: 'accident',
      path: ['place', 'address'],
      text: `${rng.pick(place.streets)}`,
      what: 'accident address',
    },
    {
      kind: 'set',
      root: 'sketch',
      what: 'road and vehicle A on the sketch',
      plain: {
        elements: {
          'A-road': { kind: 'road', x: 0, y: 0.5, rotation: 0, points: [0, 0.5, 1, 0.5] },
          'A-car': { kind: 'vehicle', vehicle: 'A', x: rng.float(0.2, 0.4), y: 0.5, rotation: 90 },
        },
      },
    },
    { kind: 'stroke', id: 'A-stroke-1', points: strokePoints(rng), what: 'a stroke on the sketch' },
    ...vehicleActions(rng, 'A', insurers.A, accidentDay, formVersion, now, ring?.A),
    { kind: 'stroke', id: 'A-stroke-2', points: strokePoints(rng), what: 'another stroke' },
  ];
  const witnesses = Array.from({ length: suspicious ? 0 : rng.int(0, 2) }, () => {
    const w = person(rng);
    return {
      name: `${w.firstName} ${w.lastName}`,
      address: `${rng.int(1, 80)} ${rng.pick(rng.pick(PLACES).streets)}`,
      phone: `0${rng.pick([5, 6, 7])}${rng.int(10_000_000, 99_999_999)}`,
    };
  });
  const vehicleB = vehicleActions(rng, 'B', insurers.B, accidentDay, formVersion, now, ring?.B);
  const B: FillAction[] = [
    {
      kind: 'set',
      root: 'sketch',
      what: 'vehicle B and an arrow on the sketch',
      plain: {
        elements: {
          'B-car': { kind: 'vehicle', vehicle: 'B', x: rng.float(0.5, 0.8), y: 0.5, rotation: 90 },
          'B-arrow': { kind: 'arrow', x: 0.5, y: 0.4, rotation: rng.int(0, 359) },
        },
      },
    },
    ...vehicleB.slice(0, 6),
    { kind: 'stroke', id: 'B-stroke-1', points: strokePoints(rng), what: 'a stroke on the sketch' },
    ...(witnesses.length > 0
      ? [{ kind: 'set', root: 'accident', plain: { witnesses }, what: 'witnesses' } as FillAction]
      : []),
    {
      kind: 'set',
      root: 'sketch',
      what: 'a label on the sketch',
      plain: { elements: { 'B-label': { kind: 'label', x: 0.5, y: 0.2, text: 'Feu rouge' } } },
    },
    ...vehicleB.slice(6),
    {
      kind: 'type',
      root: 'accident',
      path: ['place', 'address'],
      text: ' (près du rond-point)',
      what: "a correction to A's address",
    },
  ];
  return { A, B, insurers };
}

/** Number of Yjs updates an action makes (for pacing and progress). */
export function updatesOf(action: FillAction): number {
  switch (action.kind) {
    case 'set':
    case 'tick':
      return 1;
    case 'type':
      return [...action.text].length;
    case 'stroke':
      return 1 + action.points.length / 2;
  }
}

/**
 * Runs one action on a document. `pause(n)` is awaited after every burst of n updates, which
 * is how the caller paces typing (a word at a time) and strokes (a few points at a time).
 */
export async function runAction(
  doc: Y.Doc,
  action: FillAction,
  pause: (updates: number) => Promise<void>,
): Promise<void> {
  switch (action.kind) {
    case 'set':
      writeSection(doc, action.root, action.plain);
      await pause(1);
      return;
    case 'tick': {
      const set = doc.getMap(action.vehicle).get('circumstances');
      if (set instanceof Y.Map) set.set(action.box, true);
      else writeSection(doc, action.vehicle, { circumstances: { [action.box]: true } });
      await pause(1);
      return;
    }
    case 'type': {
      // A word at a time: each character its own update, a pause after each word.
      for (const word of action.text.match(/\S+\s*|\s+/gu) ?? []) {
        typeText(doc, action.root, action.path, word);
        await pause([...word].length);
      }
      return;
    }
    case 'stroke': {
      writeSection(doc, 'sketch', {
        elements: {
          [action.id]: { kind: 'stroke', x: action.points[0]!, y: action.points[1]!, points: [] },
        },
      });
      await pause(1);
      const element = (doc.getMap('sketch').get('elements') as Y.Map<unknown>).get(action.id);
      const points = (element as Y.Map<unknown>).get('points') as Y.Array<number>;
      // A few points per burst, as touch events arrive.
      let burst = 0;
      for (let i = 0; i < action.points.length; i += 2) {
        points.push([action.points[i]!, action.points[i + 1]!]);
        if (++burst === 3) {
          await pause(burst);
          burst = 0;
        }
      }
      if (burst > 0) await pause(burst);
      return;
    }
  }
}

const POINTS_PER_STROKE = 200;
const STROKES_PER_UPDATE = 20;

/**
 * Draws finger strokes (200 points each) on the sketch until the document encodes to `bytes`:
 * what a very detailed sketch weighs (1.7 MB is about 1,400 strokes). Strokes are sent 20 to
 * an update (about 25 KB), with `pause` awaited between updates (rate limits). Returns the
 * document's encoded size.
 */
export async function growSketch(
  doc: Y.Doc,
  bytes: number,
  pause: () => Promise<void>,
): Promise<number> {
  let elements = doc.getMap('sketch').get('elements');
  if (!(elements instanceof Y.Map)) {
    elements = new Y.Map();
    doc.getMap('sketch').set('elements', elements);
  }
  const map = elements as Y.Map<unknown>;
  let size = Y.encodeStateAsUpdate(doc).byteLength;
  for (let n = map.size; size < bytes;) {
    doc.transact(() => {
      // About 1.2 KB per stroke: stop near the size without encoding after each one.
      for (let i = 0; i < STROKES_PER_UPDATE && size < bytes; i++, n++) {
        const stroke = new Y.Map<unknown>();
        map.set(`stroke-${n}`, stroke);
        stroke.set('kind', 'stroke');
        stroke.set('x', n % 1000);
        stroke.set('y', (n * 7) % 1000);
        const points = new Y.Array<number>();
        stroke.set('points', points);
        const xy: number[] = [];
        for (let p = 0; p < POINTS_PER_STROKE * 2; p++) xy.push((n * 31 + p * 17) % 1000);
        points.push(xy);
        size += 1_250;
      }
    });
    size = Y.encodeStateAsUpdate(doc).byteLength;
    await pause();
  }
  return size;
}

/**
 * The content a pair would sign, without phones: the pair script's actions applied to one
 * document at once (what the AI benchmark feeds the AI service).
 */
export async function pairContent(
  rng: Random,
  knownInsurers: readonly string[],
  opts: { suspicious?: boolean; now?: Date } = {},
): Promise<{ content: ConstatContent; insurers: { A: string; B: string } }> {
  const script = pairScript(rng, knownInsurers, opts);
  const doc = new Y.Doc();
  const none = async () => {};
  for (const action of [...script.A, ...script.B]) await runAction(doc, action, none);
  return { content: materialise(doc), insurers: script.insurers };
}
