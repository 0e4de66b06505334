/**
 * The motion templates (templates.json): how a vehicle moved before the impact, per ticked
 * circumstance box of each form version. Data on purpose: a better template is an edit of the
 * file and its `version`, not a code change. Loaded once and checked, so a bad edit fails the
 * start naming the field.
 */
import { readFileSync } from 'node:fs';

/** One piece of a path, in the order driven: a straight run, or an arc turning `turn` degrees. */
export type PathSegment = { straight: number } | { turn: number; radius: number };

export interface MotionTemplate {
  fr: string;
  ar: string;
  segments: PathSegment[];
  /** The vehicle travels rear first (the path is driven backwards). */
  reverse?: boolean;
  /** A door opens at the impact (the vehicle does not move). */
  door?: boolean;
  /** An arrow drawn from the vehicle may bend the approach (see docs/ai.md). */
  followsArrow?: boolean;
}

export interface MotionTemplates {
  version: string;
  source: string;
  /** The template of a party that ticked no box the table knows. */
  default: string;
  /** When a party ticked several boxes, the first template of this list among them moves it. */
  priority: string[];
  templates: Record<string, MotionTemplate>;
  /** Form version → box id → template name. */
  forms: Record<string, Record<string, string>>;
}

const FILE = new URL('./templates.json', import.meta.url);

class TemplateError extends Error {
  constructor(field: string, problem: string) {
    super(`ai/video/templates.json: ${field} ${problem}`);
    this.name = 'TemplateError';
  }
}

const isNum = (v: unknown, min: number) => typeof v === 'number' && Number.isFinite(v) && v >= min;

function checkSegment(name: string, i: number, s: unknown): void {
  const seg = (typeof s === 'object' && s !== null ? s : {}) as Record<string, unknown>;
  const field = `templates.${name}.segments[${i}]`;
  if ('straight' in seg) {
    if (!isNum(seg.straight, 0)) throw new TemplateError(field, 'straight must be a number ≥ 0');
  } else if ('turn' in seg) {
    if (typeof seg.turn !== 'number' || !Number.isFinite(seg.turn) || Math.abs(seg.turn) > 360)
      throw new TemplateError(field, 'turn must be degrees between -360 and 360');
    if (!isNum(seg.radius, 1)) throw new TemplateError(field, 'radius must be a number ≥ 1');
  } else {
    throw new TemplateError(field, 'must have straight, or turn and radius');
  }
}

/** Checks a parsed template file; throws naming the first wrong field. */
export function checkTemplates(raw: unknown): MotionTemplates {
  const t = raw as MotionTemplates;
  if (typeof t?.version !== 'string' || t.version === '')
    throw new TemplateError('version', 'is missing');
  if (typeof t.templates !== 'object' || t.templates === null)
    throw new TemplateError('templates', 'is missing');
  for (const [name, tpl] of Object.entries(t.templates)) {
    if (typeof tpl.fr !== 'string' || typeof tpl.ar !== 'string')
      throw new TemplateError(`templates.${name}`, 'needs fr and ar names');
    if (!Array.isArray(tpl.segments))
      throw new TemplateError(`templates.${name}.segments`, 'must be a list');
    tpl.segments.forEach((s, i) => checkSegment(name, i, s));
  }
  const known = (name: string, field: string) => {
    if (!(name in t.templates)) throw new TemplateError(field, `names unknown template "${name}"`);
  };
  known(t.default, 'default');
  if (!Array.isArray(t.priority)) throw new TemplateError('priority', 'must be a list');
  t.priority.forEach((name, i) => known(name, `priority[${i}]`));
  for (const name of Object.keys(t.templates)) {
    if (!t.priority.includes(name)) throw new TemplateError('priority', `lacks "${name}"`);
  }
  for (const [form, boxes] of Object.entries(t.forms ?? {})) {
    for (const [box, name] of Object.entries(boxes)) known(name, `forms.${form}.${box}`);
  }
  return t;
}

export function loadTemplates(): MotionTemplates {
  return checkTemplates(JSON.parse(readFileSync(FILE, 'utf8')));
}

/** The template that moves a party, from its ticked boxes (ids as strings) on its form. */
export function chooseTemplate(
  templates: MotionTemplates,
  formVersion: string,
  ticked: ReadonlySet<string>,
): { name: string; assumed: boolean } {
  const boxes = templates.forms[formVersion] ?? {};
  const names = new Set([...ticked].flatMap((box) => (boxes[box] ? [boxes[box]] : [])));
  const name = templates.priority.find((n) => names.has(n));
  return name ? { name, assumed: false } : { name: templates.default, assumed: true };
}
