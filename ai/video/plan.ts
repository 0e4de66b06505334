/**
 * What the video shows, decided before anything is drawn: the scene, each vehicle's path and
 * template, the impact point, the captions and notes, the timeline and where the sketch sits
 * in the frame. Pure and JSON-serialisable: the renderer (a child process) receives it as is,
 * and the tests compute expected pixel positions from it.
 */
import { ROLES, str, ticked, type ConstatView, type Role } from '../constat-view.js';
import { getFormVersion } from '../../constat/form-versions.js';
import {
  arrowHeading,
  fittedPath,
  outlinePoint,
  ease,
  poseAt,
  type VehiclePath,
} from './motion.js';
import {
  sceneOf,
  SKETCH_HEIGHT,
  SKETCH_WIDTH,
  wrapDegrees,
  type Point,
  type Pose,
  type Scene,
} from './scene.js';
import { chooseTemplate, type MotionTemplates, type PathSegment } from './templates.js';

export const VIDEO_WIDTH = 1280;
export const VIDEO_HEIGHT = 720;
export const VIDEO_FPS = 30;
/** Bands above (the advisory line) and below (the captions) the sketch. */
export const TOP_BAND = 48;
export const BOTTOM_BAND = 132;
/** A vehicle as drawn, in sketch units. */
export const VEHICLE_LENGTH = 110;
export const VEHICLE_WIDTH = 54;
export const ROLE_COLOURS: Record<Role, { body: string; text: string }> = {
  A: { body: '#1f5fa8', text: '#ffffff' },
  B: { body: '#d99a00', text: '#1a1a1a' },
};
/** An arrow bends a "straight" approach only when it points this far from the vehicle. */
const ARROW_MIN_DEGREES = 20;

export interface Note {
  code: string;
  fr: string;
  ar: string;
}

export interface PlannedVehicle {
  role: Role;
  template: string;
  /** The party ticked no box a template knows: the default was assumed. */
  assumed: boolean;
  /** Bent by an arrow drawn from the vehicle. */
  arrow: boolean;
  boxes: string[];
  path: VehiclePath;
  door: boolean;
}

export interface VideoPlan {
  width: number;
  height: number;
  fps: number;
  durationSeconds: number;
  still: boolean;
  /** The sketch's place in the frame: video = offset + sketch × scale. */
  view: { scale: number; offsetX: number; offsetY: number };
  /** Vehicles stand at their start until `startSeconds` and reach the impact at `impactSeconds`. */
  timeline: { startSeconds: number; impactSeconds: number };
  scene: Scene;
  vehicles: PlannedVehicle[];
  impact?: { x: number; y: number; from: Role | 'midpoint' };
  captions: Record<Role, { fr: string; ar: string }>;
  placeLine: string;
  notes: Note[];
  templatesVersion: string;
}

const ADVISORY_NOTE: Note = {
  code: 'advisory',
  fr: 'Reconstitution indicative générée automatiquement — ne constitue ni une preuve ni une décision',
  ar: 'إعادة بناء تقريبية مولدة آليا — ليست دليلا ولا قرارا',
};
export const ADVISORY = ADVISORY_NOTE;

export function frameView(): VideoPlan['view'] {
  const scale = Math.min(
    VIDEO_WIDTH / SKETCH_WIDTH,
    (VIDEO_HEIGHT - TOP_BAND - BOTTOM_BAND) / SKETCH_HEIGHT,
  );
  return {
    scale,
    offsetX: (VIDEO_WIDTH - SKETCH_WIDTH * scale) / 2,
    offsetY: TOP_BAND,
  };
}

/** A sketch point in video pixels. */
export function toVideo(plan: Pick<VideoPlan, 'view'>, p: { x: number; y: number }): Point {
  return [plan.view.offsetX + p.x * plan.view.scale, plan.view.offsetY + p.y * plan.view.scale];
}

/** A vehicle's pose at `seconds` into the video. */
export function vehiclePoseAt(plan: VideoPlan, vehicle: PlannedVehicle, seconds: number): Pose {
  const { startSeconds, impactSeconds } = plan.timeline;
  const u = plan.still ? 1 : ease((seconds - startSeconds) / (impactSeconds - startSeconds));
  return poseAt(vehicle.path, u);
}

function labelsOf(view: ConstatView, role: Role, templates: MotionTemplates, boxes: string[]) {
  const form = getFormVersion(view.formVersion);
  const fr: string[] = [];
  const ar: string[] = [];
  for (const box of boxes) {
    const c = form?.circumstances.find((x) => String(x.id) === box);
    const tpl = templates.templates[templates.forms[view.formVersion]?.[box] ?? ''];
    fr.push(c?.labels.fr ?? tpl?.fr ?? `case ${box}`);
    ar.push(c?.labels.ar ?? tpl?.ar ?? `الخانة ${box}`);
  }
  return { fr, ar, role };
}

function captionFor(
  role: Role,
  labels: { fr: string[]; ar: string[] },
  assumedName: string | undefined,
  templates: MotionTemplates,
): { fr: string; ar: string } {
  if (labels.fr.length > 0)
    return { fr: `${role} : ${labels.fr.join(' · ')}`, ar: `${role}: ${labels.ar.join(' · ')}` };
  const tpl = templates.templates[assumedName ?? templates.default]!;
  return {
    fr: `${role} : aucune case cochée (supposé : ${tpl.fr})`,
    ar: `${role}: لم تحدد أي حالة (مفترض: ${tpl.ar})`,
  };
}

function segmentsFor(
  tplSegments: PathSegment[],
  followsArrow: boolean,
  end: Pose,
  arrow: number | undefined,
): { segments: PathSegment[]; bent: boolean } {
  if (!followsArrow || arrow === undefined) return { segments: tplSegments, bent: false };
  // The vehicle came along the arrow and ended at its sketched heading: turn by the difference.
  const turn = wrapDegrees(end.heading - arrow);
  if (Math.abs(turn) < ARROW_MIN_DEGREES) return { segments: tplSegments, bent: false };
  return { segments: [{ straight: 140 }, { turn, radius: 120 }], bent: true };
}

function placeLine(view: ConstatView): string {
  const a = view.accident;
  const when = [str(a.date), str(a.time)].filter(Boolean).join(' ');
  const where = [str(a.place?.commune), str(a.place?.address)].filter(Boolean).join(', ');
  return [when, where].filter(Boolean).join(' · ').slice(0, 140);
}

export function planVideo(view: ConstatView, templates: MotionTemplates): VideoPlan {
  const scene = sceneOf(view.sketch);
  const notes: Note[] = [ADVISORY_NOTE];
  const arrows = scene.elements.filter((e) => e.kind === 'arrow').map((e) => e.points!);
  const vehicles: PlannedVehicle[] = [];
  const captions = {} as VideoPlan['captions'];
  for (const role of ROLES) {
    const boxes = [...ticked(view.vehicles[role])].sort((a, b) => Number(a) - Number(b));
    const chosen = chooseTemplate(templates, view.formVersion, new Set(boxes));
    const tpl = templates.templates[chosen.name]!;
    captions[role] = captionFor(
      role,
      labelsOf(view, role, templates, boxes),
      chosen.assumed ? chosen.name : undefined,
      templates,
    );
    const end = scene.vehicles[role];
    if (!end) continue;
    const arrow = arrowHeading(end, arrows);
    const { segments, bent } = segmentsFor(tpl.segments, tpl.followsArrow === true, end, arrow);
    vehicles.push({
      role,
      template: chosen.name,
      assumed: chosen.assumed,
      arrow: bent,
      boxes,
      path: fittedPath(end, segments, tpl.reverse === true),
      door: tpl.door === true,
    });
  }
  const missing = ROLES.filter((r) => !scene.vehicles[r]);
  const still = missing.length > 0;
  if (still) {
    notes.push({
      code: 'sketch_without_vehicles',
      fr: `Croquis insuffisant pour animer : véhicule ${missing.join(' et ')} absent du croquis — image fixe`,
      ar: `الرسم غير كاف للتحريك: المركبة ${missing.join(' و ')} غير موجودة في الرسم — صورة ثابتة`,
    });
  }
  for (const v of vehicles.filter((x) => x.assumed)) {
    notes.push({
      code: `no_circumstance_${v.role}`,
      fr: `${v.role} : aucune case cochée, trajectoire supposée`,
      ar: `${v.role}: لم تحدد أي حالة، مسار مفترض`,
    });
  }
  const impact = still ? undefined : impactOf(view, vehicles);
  const startSeconds = 1.5;
  const impactSeconds = 7.5;
  return {
    width: VIDEO_WIDTH,
    height: VIDEO_HEIGHT,
    fps: VIDEO_FPS,
    durationSeconds: still ? 4 : 10,
    still,
    view: frameView(),
    timeline: { startSeconds, impactSeconds },
    scene,
    vehicles,
    ...(impact ? { impact } : {}),
    captions,
    placeLine: placeLine(view),
    notes,
    templatesVersion: templates.version,
  };
}

/** Where the vehicles touch: a party's tapped impact point on its outline, else between them. */
function impactOf(view: ConstatView, vehicles: PlannedVehicle[]): VideoPlan['impact'] {
  for (const v of vehicles) {
    const p = view.vehicles[v.role].impactPoint;
    const x = typeof p?.x === 'number' && Number.isFinite(p.x) ? p.x : undefined;
    const y = typeof p?.y === 'number' && Number.isFinite(p.y) ? p.y : undefined;
    if (x === undefined || y === undefined) continue;
    const end = poseAt(v.path, 1);
    const [ix, iy] = outlinePoint(
      end,
      { x: Math.min(1, Math.max(0, x)), y: Math.min(1, Math.max(0, y)) },
      VEHICLE_LENGTH,
      VEHICLE_WIDTH,
    );
    return { x: ix, y: iy, from: v.role };
  }
  const [a, b] = vehicles.map((v) => poseAt(v.path, 1));
  return { x: (a!.x + b!.x) / 2, y: (a!.y + b!.y) / 2, from: 'midpoint' };
}
