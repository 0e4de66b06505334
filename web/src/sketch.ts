/**
 * The accident sketch: roads, the two vehicles (move, rotate), arrows, free strokes and labels,
 * drawn with mouse, pen or finger on a Konva stage and stored in the `sketch` root as
 * docs/document.md describes (`elements`: id → Y.Map { kind, x, y, rotation?, vehicle?,
 * points?, text? }), in the document's units: the stage draws in a fixed 1000 × 600 view and
 * `sketch-units.ts` converts every read and write, so the report, the video and the other phone
 * see what this one shows. A gesture is written once, when it ends: one update per stroke
 * rather than one per pointer move.
 *
 * Without a pointer (keyboard, switch access): a tool button pressed from the keyboard places
 * its element at the centre and selects it; the focused sketch takes N / P (choose an element),
 * the arrows (move; Shift: further), R / Shift+R (rotate), Delete, Escape. The selection is
 * announced in a live region, so a screen reader hears what is selected and where. Free strokes
 * need a pointer: they are drawings, not positions.
 */
import Konva from 'konva';
import * as Y from 'yjs';
import { h } from './dom.js';
import { t, type Word } from './i18n.js';
import type { LiveConstat } from './live-constat.js';
import {
  VIEW_HEIGHT as HEIGHT,
  VIEW_WIDTH as WIDTH,
  directionOf,
  docOf,
  viewOf,
  type DocGeometry,
  type ViewGeometry,
} from './sketch-units.js';

/** Keyboard steps, in view units and degrees. */
const STEP = 10;
const BIG_STEP = 50;
const TURN = 15;

type Tool = 'select' | 'road' | 'vehicleA' | 'vehicleB' | 'arrow' | 'stroke' | 'label';
const TOOLS: Array<[Tool, Word]> = [
  ['select', 'toolSelect'],
  ['road', 'toolRoad'],
  ['vehicleA', 'toolCarA'],
  ['vehicleB', 'toolCarB'],
  ['arrow', 'toolArrow'],
  ['stroke', 'toolStroke'],
  ['label', 'toolLabel'],
];

export class SketchView {
  readonly element: HTMLElement;
  readonly #stage: Konva.Stage;
  readonly #layer = new Konva.Layer();
  readonly #transformer = new Konva.Transformer({
    resizeEnabled: false,
    rotateEnabled: true,
    rotationSnaps: [0, 45, 90, 135, 180, 225, 270, 315],
    anchorSize: 22,
  });
  readonly #host: HTMLDivElement;
  readonly #status: HTMLParagraphElement;
  readonly #buttons = new Map<Tool, HTMLButtonElement>();
  #tool: Tool = 'select';
  #selected: string | undefined;
  #drawing: { shape: Konva.Line; points: number[]; tool: Tool } | undefined;
  #dragging = false;
  /** Where a label goes once the press that placed it is over. */
  #pendingLabel: { x: number; y: number } | undefined;

  constructor(
    private readonly live: LiveConstat,
    private readonly frozen: () => boolean,
  ) {
    this.#host = h('div', {
      class: 'sketch-host',
      id: 'sketch-canvas',
      role: 'application',
      tabindex: 0,
      'aria-label': t('sketch'),
      'aria-describedby': 'sketch-keys sketch-status',
    });
    this.#host.addEventListener('keydown', (event) => this.#key(event));
    this.#status = h(
      'p',
      { class: 'hint', id: 'sketch-status', role: 'status', 'aria-live': 'polite' },
      t('nothingSelected'),
    );
    const tools = h('div', { class: 'tools', role: 'toolbar', 'aria-label': t('sketch') });
    for (const [tool, word] of TOOLS) {
      const button = h(
        'button',
        {
          type: 'button',
          class: 'small',
          'data-tool': tool,
          'aria-pressed': String(tool === 'select'),
        },
        t(word),
      );
      // `detail` is 0 for a click made with the keyboard (Enter, Space).
      button.addEventListener('click', (event) =>
        event.detail === 0 ? this.#placeFromKeyboard(tool) : this.#setTool(tool),
      );
      this.#buttons.set(tool, button);
      tools.append(button);
    }
    const rotate = h(
      'button',
      { type: 'button', class: 'small', 'data-action': 'rotate' },
      `${t('rotate')} ⟳`,
    );
    rotate.addEventListener('click', () => this.#rotateSelected(15));
    const remove = h(
      'button',
      { type: 'button', class: 'small', 'data-action': 'delete' },
      t('remove'),
    );
    remove.addEventListener('click', () => this.#deleteSelected());
    tools.append(rotate, remove);
    this.element = h(
      'section',
      { id: 'sketch' },
      h('h2', {}, t('sketch')),
      tools,
      this.#host,
      this.#status,
      h('p', { class: 'hint', id: 'sketch-keys' }, t('sketchKeys')),
    );

    this.#stage = new Konva.Stage({ container: this.#host, width: WIDTH, height: HEIGHT });
    this.#stage.add(this.#layer);
    this.#stage.on('pointerdown', (e) => this.#down(e));
    this.#stage.on('pointermove', () => this.#move());
    this.#stage.on('pointerup pointercancel', () => this.#up());
    // Observing the root, not `elements`: it may arrive with the first sync.
    this.live.doc.getMap('sketch').observeDeep(() => {
      if (!this.#dragging && !this.#drawing) this.render();
    });
    new ResizeObserver(() => this.#fit()).observe(this.#host);
    this.render();
  }

  /**
   * The server's skeleton creates `elements`; until this phone has it (first sync) there is
   * nothing to draw on. Creating it here would race the skeleton and lose one of the two maps.
   */
  #elements(): Y.Map<Y.Map<unknown>> | undefined {
    const elements = this.live.doc.getMap('sketch').get('elements');
    return elements instanceof Y.Map ? (elements as Y.Map<Y.Map<unknown>>) : undefined;
  }

  #fit(): void {
    const width = this.#host.clientWidth || WIDTH;
    const scale = width / WIDTH;
    this.#stage.width(width);
    this.#stage.height(HEIGHT * scale);
    this.#stage.scale({ x: scale, y: scale });
  }

  #setTool(tool: Tool): void {
    this.#tool = tool;
    for (const [name, button] of this.#buttons)
      button.setAttribute('aria-pressed', String(name === tool));
    this.#selected = undefined;
    this.render(); // elements are draggable with the select tool only
  }

  #point(): { x: number; y: number } {
    const p = this.#stage.getRelativePointerPosition() ?? { x: 0, y: 0 };
    return { x: Math.round(p.x), y: Math.round(p.y) };
  }

  #down(event: Konva.KonvaEventObject<PointerEvent>): void {
    const elements = this.#elements();
    if (this.frozen() || !elements) return;
    const p = this.#point();
    if (this.#tool === 'select') {
      const id = findId(event.target);
      this.#select(id);
      return;
    }
    if (this.#tool === 'vehicleA' || this.#tool === 'vehicleB') {
      const letter = this.#tool === 'vehicleA' ? 'A' : 'B';
      // One vehicle A and one vehicle B: placing it again moves it.
      const existing = [...elements.entries()].find(
        ([, el]) => el.get('kind') === 'vehicle' && el.get('vehicle') === letter,
      );
      if (existing) {
        const el = existing[1];
        this.#write(el, { ...viewOf('vehicle', geometry(el)), x: p.x, y: p.y });
      } else {
        this.#add('vehicle', { vehicle: letter }, { x: p.x, y: p.y, rotation: 0, points: [] });
      }
      this.#setTool('select');
      return;
    }
    if (this.#tool === 'label') {
      // Asked once the press is over: a modal prompt opened inside pointerdown swallows the
      // pointerup, leaving the browser (and Konva) with a button held down.
      this.#pendingLabel = p;
      return;
    }
    const shape = new Konva.Line({ points: [p.x, p.y], ...lineStyle(this.#tool) });
    this.#layer.add(shape);
    this.#drawing = { shape, points: [p.x, p.y], tool: this.#tool };
  }

  #move(): void {
    const drawing = this.#drawing;
    if (!drawing) return;
    const p = this.#point();
    if (drawing.tool === 'stroke') {
      const [lx, ly] = drawing.points.slice(-2) as [number, number];
      if (Math.hypot(p.x - lx, p.y - ly) < 4) return;
      drawing.points.push(p.x, p.y);
    } else {
      drawing.points = [drawing.points[0]!, drawing.points[1]!, p.x, p.y];
    }
    drawing.shape.points(drawing.points);
    this.#layer.batchDraw();
  }

  #up(): void {
    const label = this.#pendingLabel;
    if (label) {
      this.#pendingLabel = undefined;
      const text = window.prompt(t('labelPrompt'))?.trim();
      if (text)
        this.#add(
          'label',
          { text: new Y.Text(text.slice(0, 200)) },
          { x: label.x, y: label.y, rotation: 0, points: [] },
        );
      this.#setTool('select');
      return;
    }
    const drawing = this.#drawing;
    if (!drawing) return;
    this.#drawing = undefined;
    const [x0, y0] = drawing.points as [number, number];
    const relative = drawing.points.map((v, i) => v - (i % 2 === 0 ? x0 : y0));
    const long = relative.length >= 4 && Math.hypot(relative.at(-2)!, relative.at(-1)!) > 10;
    if (long || (drawing.tool === 'stroke' && relative.length >= 4)) {
      const kind = drawing.tool === 'road' ? 'road' : drawing.tool === 'arrow' ? 'arrow' : 'stroke';
      this.#add(kind, {}, { x: x0, y: y0, rotation: 0, points: relative.slice(0, 2000) });
    }
    this.render();
  }

  /** A new element of `kind`, where `view` puts it on the stage. */
  #add(kind: string, fields: Record<string, unknown>, view: ViewGeometry): string | undefined {
    const elements = this.#elements();
    if (!elements) return undefined;
    const el = new Y.Map<unknown>();
    const id = crypto.randomUUID();
    this.live.doc.transact(() => {
      el.set('kind', kind);
      for (const [k, v] of Object.entries(fields)) el.set(k, v);
      setGeometry(el, docOf(kind, view));
      elements.set(id, el);
    });
    return id;
  }

  /** An element moved or turned on the stage: written back in the document's units. */
  #write(el: Y.Map<unknown>, view: ViewGeometry): void {
    this.live.doc.transact(() => setGeometry(el, docOf(el.get('kind'), view)));
  }

  #select(id: string | undefined): void {
    this.#selected = id;
    const node = id ? this.#layer.findOne(`#${cssId(id)}`) : undefined;
    this.#transformer.nodes(node ? [node] : []);
    this.#layer.batchDraw();
    this.#announce();
  }

  /** Says what is selected and where, in the live region and as data for tests. */
  #announce(): void {
    const el = this.#selected ? this.#elements()?.get(this.#selected) : undefined;
    if (!el) {
      delete this.#host.dataset.selected;
      this.#status.textContent = t('nothingSelected');
      return;
    }
    const kind = String(el.get('kind'));
    const name = kind === 'vehicle' ? `vehicle${String(el.get('vehicle'))}` : kind;
    // Where in the view's units (what the arrow keys step in); which way in the document's
    // convention, as the report and the video draw it: 0° up, clockwise.
    const doc = geometry(el);
    const view = viewOf(kind, doc);
    const where = `x ${Math.round(view.x)} · y ${Math.round(view.y)} · ${directionOf(kind, doc)}°`;
    this.#host.dataset.selected = `${name} ${where}`;
    this.#status.textContent = `${t('selected')}: ${t(KIND_WORDS[name] ?? 'toolStroke')} · ${where}`;
  }

  /**
   * A tool chosen from the keyboard: its element goes to the centre, selected, and the sketch
   * takes the focus so the arrows move it. A vehicle already drawn is selected, not moved.
   */
  #placeFromKeyboard(tool: Tool): void {
    const elements = this.#elements();
    if (this.frozen() || !elements || tool === 'stroke') return this.#setTool(tool);
    this.#setTool('select');
    const cx = WIDTH / 2;
    const cy = HEIGHT / 2;
    let id: string | undefined;
    if (tool === 'vehicleA' || tool === 'vehicleB') {
      const letter = tool === 'vehicleA' ? 'A' : 'B';
      id =
        [...elements.entries()].find(
          ([, el]) => el.get('kind') === 'vehicle' && el.get('vehicle') === letter,
        )?.[0] ??
        this.#add('vehicle', { vehicle: letter }, { x: cx, y: cy, rotation: 0, points: [] });
    } else if (tool === 'road' || tool === 'arrow') {
      const half = tool === 'road' ? 400 : 60;
      id = this.#add(tool, {}, { x: cx - half, y: cy, rotation: 0, points: [0, 0, 2 * half, 0] });
    } else if (tool === 'label') {
      const text = window.prompt(t('labelPrompt'))?.trim();
      if (text)
        id = this.#add(
          'label',
          { text: new Y.Text(text.slice(0, 200)) },
          { x: cx, y: cy, rotation: 0, points: [] },
        );
    }
    this.render();
    this.#select(id);
    this.#host.focus();
  }

  #key(event: KeyboardEvent): void {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const elements = this.#elements();
    if (!elements) return;
    const key = event.key;
    const ids = [...elements.keys()];
    if (key === 'n' || key === 'N' || key === 'p' || key === 'P') {
      if (ids.length === 0) return;
      const back = key === 'p' || key === 'P' || event.shiftKey;
      const at = this.#selected ? ids.indexOf(this.#selected) : -1;
      const next =
        at === -1 ? (back ? ids.length - 1 : 0) : (at + (back ? -1 : 1) + ids.length) % ids.length;
      this.#select(ids[next]);
    } else if (key === 'Escape') {
      this.#select(undefined);
    } else if (key === 'Delete' || key === 'Backspace') {
      this.#deleteSelected();
    } else if (key === 'r' || key === 'R') {
      this.#rotateSelected(event.shiftKey ? -TURN : TURN);
    } else if (key.startsWith('Arrow')) {
      const step = event.shiftKey ? BIG_STEP : STEP;
      const dx = key === 'ArrowLeft' ? -step : key === 'ArrowRight' ? step : 0;
      const dy = key === 'ArrowUp' ? -step : key === 'ArrowDown' ? step : 0;
      this.#moveSelected(dx, dy);
    } else {
      return;
    }
    event.preventDefault();
  }

  #moveSelected(dx: number, dy: number): void {
    const el = this.#selected ? this.#elements()?.get(this.#selected) : undefined;
    if (!el || this.frozen()) return;
    const view = viewOf(el.get('kind'), geometry(el));
    view.x = clamp(Math.round(view.x) + dx, 0, WIDTH);
    view.y = clamp(Math.round(view.y) + dy, 0, HEIGHT);
    this.#write(el, view);
  }

  #rotateSelected(degrees: number): void {
    const el = this.#selected ? this.#elements()?.get(this.#selected) : undefined;
    if (!el || this.frozen()) return;
    const view = viewOf(el.get('kind'), geometry(el));
    view.rotation += degrees;
    this.#write(el, view);
  }

  #deleteSelected(): void {
    if (!this.#selected || this.frozen()) return;
    this.#elements()?.delete(this.#selected);
    this.#select(undefined);
  }

  /** Draws the document's elements (after any change, local or remote). */
  render(): void {
    this.#layer.destroyChildren();
    const order = { road: 0, stroke: 1, arrow: 2, sign: 2, vehicle: 3, label: 4 } as Record<
      string,
      number
    >;
    const elements = this.#elements();
    const entries = [...(elements?.entries() ?? [])].sort(
      (a, b) => (order[String(a[1].get('kind'))] ?? 5) - (order[String(b[1].get('kind'))] ?? 5),
    );
    for (const [id, el] of entries) {
      const node = shapeOf(el);
      if (!node) continue;
      node.id(cssId(id));
      node.setAttr('elementId', id);
      node.draggable(!this.frozen() && this.#tool === 'select');
      node.on('dragstart', () => (this.#dragging = true));
      // The node's own position and rotation, as the stage shows it (the transformer turns a
      // node about its centre, which moves its origin too).
      const placed = (): ViewGeometry => ({
        ...viewOf(el.get('kind'), geometry(el)),
        x: Math.round(node.x()),
        y: Math.round(node.y()),
        rotation: Math.round(node.rotation()),
      });
      node.on('dragend', () => {
        this.#dragging = false;
        this.#write(el, placed());
      });
      node.on('transformend', () => this.#write(el, placed()));
      this.#layer.add(node as Konva.Group | Konva.Shape);
    }
    this.#layer.add(this.#transformer);
    this.#select(this.#selected && elements?.has(this.#selected) ? this.#selected : undefined);
    this.#host.dataset.elements = String(entries.length);
  }
}

function lineStyle(tool: Tool): Konva.LineConfig {
  if (tool === 'road') return { stroke: '#9ca3af', strokeWidth: 70, lineCap: 'butt', opacity: 0.8 };
  if (tool === 'arrow') return { stroke: '#111827', strokeWidth: 5 };
  return { stroke: '#dc2626', strokeWidth: 4, lineCap: 'round', lineJoin: 'round', tension: 0.4 };
}

/** What the document holds for an element's place; anything but a finite number counts as 0. */
function geometry(el: Y.Map<unknown>): DocGeometry {
  const rotation = el.get('rotation');
  const points = el.get('points');
  return {
    x: num(el.get('x')),
    y: num(el.get('y')),
    ...(typeof rotation === 'number' && Number.isFinite(rotation) ? { rotation } : {}),
    ...(points instanceof Y.Array ? { points: (points.toArray() as unknown[]).map(num) } : {}),
  };
}

/** Writes `doc` over an element's place (inside the caller's transaction). */
function setGeometry(el: Y.Map<unknown>, doc: DocGeometry): void {
  el.set('x', doc.x);
  el.set('y', doc.y);
  // A line's turn is in its points: a `rotation` left beside them (a bare arrow's direction)
  // would say something the points no longer do.
  if (doc.rotation !== undefined) el.set('rotation', doc.rotation);
  else if (el.has('rotation')) el.delete('rotation');
  if (doc.points) {
    const points = new Y.Array<number>();
    points.push(doc.points);
    el.set('points', points);
  }
}

function shapeOf(el: Y.Map<unknown>): Konva.Node | undefined {
  const { x, y, rotation, points: pts } = viewOf(el.get('kind'), geometry(el));
  switch (el.get('kind')) {
    case 'road': {
      const group = new Konva.Group({ x, y, rotation });
      group.add(new Konva.Line({ points: pts, ...lineStyle('road') }));
      group.add(new Konva.Line({ points: pts, stroke: '#fff', strokeWidth: 3, dash: [20, 16] }));
      return group;
    }
    case 'arrow':
      return new Konva.Arrow({
        x,
        y,
        rotation,
        points: pts,
        stroke: '#111827',
        fill: '#111827',
        strokeWidth: 5,
        pointerLength: 18,
        pointerWidth: 18,
        hitStrokeWidth: 24,
      });
    case 'stroke':
      return new Konva.Line({
        x,
        y,
        rotation,
        points: pts,
        ...lineStyle('stroke'),
        hitStrokeWidth: 20,
      });
    case 'label': {
      const text = el.get('text');
      const label = new Konva.Text({
        x,
        y,
        rotation,
        text: String(text instanceof Y.Text ? text.toString() : (text ?? '')),
        fontSize: 28,
        fill: '#111827',
        padding: 4,
      });
      // Anchored as the report draws a label: centred on x, its baseline (about a quarter of
      // the font size above the bottom of the glyphs' box) on y.
      label.offset({ x: label.width() / 2, y: label.height() - label.padding() - 7 });
      return label;
    }
    case 'vehicle':
    case 'sign': {
      const letter = el.get('kind') === 'vehicle' ? String(el.get('vehicle') ?? '?') : '!';
      const colour = letter === 'A' ? '#2563eb' : letter === 'B' ? '#eab308' : '#dc2626';
      const group = new Konva.Group({ x, y, rotation });
      group.add(
        new Konva.Rect({
          x: -60,
          y: -30,
          width: 120,
          height: 60,
          cornerRadius: 14,
          fill: colour,
          stroke: '#111827',
          strokeWidth: 3,
        }),
      );
      group.add(
        new Konva.Line({ points: [60, -14, 78, 0, 60, 14], closed: true, fill: '#111827' }),
      );
      group.add(
        new Konva.Text({
          x: -60,
          y: -18,
          width: 120,
          align: 'center',
          text: letter,
          fontSize: 36,
          fontStyle: 'bold',
          fill: '#fff',
        }),
      );
      return group;
    }
    default:
      return undefined;
  }
}

/** The words that name an element in the live region (the tool that draws it). */
const KIND_WORDS: Record<string, Word> = {
  vehicleA: 'toolCarA',
  vehicleB: 'toolCarB',
  road: 'toolRoad',
  arrow: 'toolArrow',
  stroke: 'toolStroke',
  label: 'toolLabel',
};

function clamp(v: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, v));
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function cssId(id: string): string {
  return `el-${id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

function findId(node: Konva.Node): string | undefined {
  let current: Konva.Node | null = node;
  while (current) {
    const id = current.getAttr('elementId') as string | undefined;
    if (id) return id;
    current = current.getParent();
  }
  return undefined;
}
