/**
 * The form, bound field by field to the Yjs document (layout: docs/document.md). Each input
 * names its document path in `data-path`; typing writes there at once (text fields as Y.Text
 * edits, so both drivers' typing merges), and every change of the document, local or remote,
 * refreshes the inputs. The other driver's column is read-only here, but the server is the
 * authority: whatever it refuses is shown by the session banner, not hidden.
 */
import * as Y from 'yjs';
import { h, fieldId } from './dom.js';
import { t, currentLang, plateCategory, type Word } from './i18n.js';
import { checkPlateAsTyped, normalisePlate, textEdit } from './input-rules.js';
import { impactPicker, type ImpactPoint } from './impact.js';
import type { FieldError } from './api.js';
import type { LiveConstat, Role } from './live-constat.js';

export interface CircumstanceLabel {
  id: number;
  fr: string;
  ar: string;
}

export interface FormContext {
  live: LiveConstat;
  circumstances: CircumstanceLabel[];
  insurers: Array<{ uid: string; name: string }>;
  /** Everything read-only (finalized, or the server closed the session). */
  frozen: () => boolean;
}

interface Binding {
  path: string;
  refresh(): void;
}

interface SelectCodec {
  toDoc(choice: string): unknown;
  fromDoc(value: unknown): string;
}
const STRING_CHOICE: SelectCodec = {
  toDoc: (choice) => choice,
  fromDoc: (value) => (typeof value === 'string' ? value : ''),
};
const YES_NO: SelectCodec = {
  toDoc: (choice) => choice === 'yes',
  fromDoc: (value) => (value === true ? 'yes' : value === false ? 'no' : ''),
};

type Kind = 'text' | 'date' | 'time' | 'email' | 'tel' | 'textarea';

export class FormView {
  readonly #bindings: Binding[] = [];
  readonly #errors = new Map<string, HTMLElement>();
  readonly element: HTMLElement;

  constructor(private readonly ctx: FormContext) {
    this.element = h(
      'div',
      { class: 'form' },
      this.#accident(),
      this.#vehicle('A'),
      this.#vehicle('B'),
    );
    const onChange = () => this.refresh();
    ctx.live.doc.on('afterTransaction', onChange);
  }

  refresh(): void {
    for (const binding of this.#bindings) binding.refresh();
  }

  /** Shows the server's validation errors beside their fields; returns those with no field. */
  showErrors(errors: FieldError[]): FieldError[] {
    for (const el of this.#errors.values()) el.remove();
    this.#errors.clear();
    for (const el of this.element.querySelectorAll('.invalid')) el.classList.remove('invalid');
    const unplaced: FieldError[] = [];
    for (const error of errors) {
      const input = this.element.querySelector<HTMLElement>(
        `[data-path="${CSS.escape(error.path)}"]`,
      );
      if (!input) {
        unplaced.push(error);
        continue;
      }
      input.classList.add('invalid');
      input.setAttribute('aria-invalid', 'true');
      const note = h(
        'p',
        { class: 'field-error', role: 'alert', 'data-error-for': error.path },
        `${error.message} (${error.code})`,
      );
      input.insertAdjacentElement('afterend', note);
      this.#errors.set(error.path, note);
    }
    return unplaced;
  }

  #writable(path: string): boolean {
    if (this.ctx.frozen()) return false;
    // Until the server's skeleton is here (first sync, or the copy kept on this phone), an
    // edit would have to create shared containers, racing the skeleton: wait for it.
    if (!(this.ctx.live.doc.getMap('accident').get('place') instanceof Y.Map)) return false;
    const root = path.split('.')[0];
    if (root === 'vehicleA') return this.ctx.live.role === 'A';
    if (root === 'vehicleB') return this.ctx.live.role === 'B';
    return true;
  }

  #accident(): HTMLElement {
    const wilayas = Array.from({ length: 58 }, (_, i) => String(i + 1).padStart(2, '0'));
    return h(
      'section',
      { id: 'accident' },
      h('h2', {}, t('accident')),
      h(
        'div',
        { class: 'row' },
        this.#input('accident.date', 'date', 'date'),
        this.#input('accident.time', 'time', 'time'),
      ),
      this.#select(
        'accident.place.wilaya',
        'wilaya',
        wilayas.map((w) => [w, w]),
      ),
      this.#input('accident.place.commune', 'commune', 'text'),
      this.#input('accident.place.address', 'address', 'text'),
      this.#yesNo('accident.injuries', 'injuries'),
      this.#injuryWarning(),
      this.#checkbox('accident.otherVehicleDamage', 'otherVehicleDamage'),
      this.#checkbox('accident.objectDamage', 'objectDamage'),
    );
  }

  #injuryWarning(): HTMLElement {
    const warning = h('p', { class: 'error', role: 'note' }, t('injuriesWarning'));
    this.#bindings.push({
      path: 'accident.injuries',
      refresh: () => {
        warning.hidden = read(this.ctx.live.doc, 'accident.injuries') !== true;
      },
    });
    return warning;
  }

  #vehicle(role: Role): HTMLElement {
    const root = `vehicle${role}`;
    const mine = this.ctx.live.role === role;
    const p = (field: string) => `${root}.${field}`;
    const impact = impactPicker({
      id: fieldId(p('impactPoint')),
      label: t('impactPoint'),
      colour: role === 'A' ? '#1d4ed8' : '#ca8a04',
      readOnly: () => !this.#writable(root),
      onPick: (point) => this.#write(p('impactPoint'), point),
    });
    impact.element.dataset.path = p('impactPoint');
    this.#bindings.push({
      path: p('impactPoint'),
      refresh: () =>
        impact.show(read(this.ctx.live.doc, p('impactPoint')) as ImpactPoint | undefined),
    });
    return h(
      'section',
      { id: root, class: `party-${role}` },
      h('h2', {}, `${t('vehicle')} ${role} ${mine ? t('mine') : t('theirs')}`),
      h('h3', {}, t('policyholder')),
      this.#input(p('policyholder.lastName'), 'lastName', 'text'),
      this.#input(p('policyholder.firstName'), 'firstName', 'text'),
      this.#input(p('policyholder.address'), 'address', 'text'),
      h(
        'div',
        { class: 'row' },
        this.#input(p('policyholder.phone'), 'phone', 'tel'),
        this.#input(p('policyholder.email'), 'email', 'email'),
      ),
      h('h3', {}, t('vehicle')),
      this.#input(p('vehicle.make'), 'make', 'text'),
      this.#input(p('vehicle.model'), 'model', 'text'),
      this.#plate(root),
      h('h3', {}, t('insurer')),
      this.#select(
        p('insurer.company'),
        'company',
        this.ctx.insurers.map((i) => [i.uid, i.name]),
      ),
      this.#input(p('insurer.policyNumber'), 'policyNumber', 'text'),
      h(
        'div',
        { class: 'row' },
        this.#input(p('insurer.validFrom'), 'validFrom', 'date'),
        this.#input(p('insurer.validTo'), 'validTo', 'date'),
      ),
      this.#input(p('insurer.agency'), 'agency', 'text'),
      h('h3', {}, t('driver')),
      this.#input(p('driver.lastName'), 'lastName', 'text'),
      this.#input(p('driver.firstName'), 'firstName', 'text'),
      this.#input(p('driver.birthDate'), 'birthDate', 'date'),
      h(
        'div',
        { class: 'row' },
        this.#input(p('driver.licenceNumber'), 'licenceNumber', 'text'),
        this.#input(p('driver.licenceCategory'), 'licenceCategory', 'text'),
      ),
      h(
        'div',
        { class: 'row' },
        this.#input(p('comingFrom'), 'comingFrom', 'text'),
        this.#input(p('goingTo'), 'goingTo', 'text'),
      ),
      h('label', { for: impact.element.id }, t('impactPoint')),
      impact.element,
      this.#input(p('visibleDamage'), 'visibleDamage', 'textarea'),
      this.#circumstances(root),
      this.#input(p('remarks'), 'remarks', 'textarea'),
    );
  }

  #circumstances(root: string): HTMLElement {
    const list = h('ul', { class: 'boxes' });
    const lang = currentLang();
    for (const box of this.ctx.circumstances) {
      const path = `${root}.circumstances.${box.id}`;
      const id = fieldId(path);
      const input = h('input', { type: 'checkbox', id, 'data-path': path });
      input.addEventListener('change', () => {
        if (!this.#writable(root)) return;
        const map = container(this.ctx.live.doc, `${root}.circumstances`, true) as Y.Map<unknown>;
        this.ctx.live.doc.transact(() =>
          input.checked ? map.set(String(box.id), true) : map.delete(String(box.id)),
        );
      });
      const label = lang === 'ar' ? box.ar : box.fr;
      list.append(
        h(
          'li',
          {},
          h('label', { class: 'inline', for: id }, input, h('span', {}, `${box.id}. ${label}`)),
        ),
      );
      this.#bindings.push({
        path,
        refresh: () => {
          input.checked = read(this.ctx.live.doc, path) === true;
          input.disabled = !this.#writable(root);
        },
      });
    }
    const countPath = `${root}.circumstanceCount`;
    const count = h('input', {
      type: 'number',
      min: 0,
      max: this.ctx.circumstances.length,
      id: fieldId(countPath),
      'data-path': countPath,
      inputmode: 'numeric',
    });
    count.addEventListener('input', () => {
      const n = count.value === '' ? undefined : Number(count.value);
      this.#write(countPath, n !== undefined && Number.isInteger(n) ? n : undefined);
    });
    const ticked = h('p', { class: 'hint' });
    this.#bindings.push({
      path: countPath,
      refresh: () => {
        const value = read(this.ctx.live.doc, countPath);
        setValue(count, typeof value === 'number' ? String(value) : '');
        count.readOnly = !this.#writable(root);
        const map = container(this.ctx.live.doc, `${root}.circumstances`, false);
        const n = map instanceof Y.Map ? map.size : 0;
        ticked.textContent = `${n} ✓`;
        ticked.className = typeof value === 'number' && value !== n ? 'error' : 'hint';
      },
    });
    return h(
      'div',
      {},
      h('h3', {}, t('circumstances')),
      list,
      h('label', { for: count.id }, t('circumstanceCount')),
      count,
      ticked,
    );
  }

  #plate(root: string): HTMLElement {
    const path = `${root}.vehicle.plate`;
    const countryPath = `${root}.vehicle.plateCountry`;
    const input = h('input', {
      type: 'text',
      id: fieldId(path),
      'data-path': path,
      autocomplete: 'off',
      placeholder: t('plateHint'),
      dir: 'ltr',
      inputmode: 'numeric',
    });
    const verdict = h('p', { class: 'hint', id: `${fieldId(path)}-check`, 'aria-live': 'polite' });
    input.setAttribute('aria-describedby', verdict.id);
    const country = () => {
      const c = read(this.ctx.live.doc, countryPath);
      return typeof c === 'string' && c !== '' ? c : 'DZ';
    };
    const show = (value: string) => {
      const v = checkPlateAsTyped(value, country());
      verdict.textContent =
        v.state === 'empty'
          ? t('plateHint')
          : v.state === 'valid' && v.category !== undefined
            ? `${plateCategory(v.category)} · ${v.year} · ${t('wilayaWord')} ${v.wilaya}`
            : v.message;
      verdict.className = v.state === 'invalid' ? 'error' : v.state === 'valid' ? 'ok' : 'hint';
      input.classList.toggle('invalid', v.state === 'invalid');
    };
    input.addEventListener('input', () => {
      const normalised = normalisePlate(input.value, country());
      if (normalised !== input.value) input.value = normalised;
      show(normalised);
      this.#write(path, normalised === '' ? undefined : normalised);
    });
    this.#bindings.push({
      path,
      refresh: () => {
        const value = read(this.ctx.live.doc, path);
        setValue(input, typeof value === 'string' ? value : '');
        input.readOnly = !this.#writable(root);
        show(input.value);
      },
    });
    return h(
      'div',
      {},
      this.#input(countryPath, 'plateCountry', 'text'),
      h('label', { for: input.id }, t('plate')),
      input,
      verdict,
    );
  }

  #input(path: string, word: Word, kind: Kind): HTMLElement {
    const id = fieldId(path);
    const input =
      kind === 'textarea'
        ? h('textarea', { id, 'data-path': path })
        : h('input', { type: kind, id, 'data-path': path, autocomplete: 'off' });
    input.addEventListener('input', () => {
      const doc = this.ctx.live.doc;
      const current = container(doc, path, false);
      if (current instanceof Y.Text) {
        const edit = textEdit(current.toString(), input.value);
        if (!edit) return;
        doc.transact(() => {
          if (edit.remove > 0) current.delete(edit.index, edit.remove);
          if (edit.insert) current.insert(edit.index, edit.insert);
        });
      } else {
        this.#write(path, input.value === '' ? undefined : input.value);
      }
    });
    this.#bindings.push({
      path,
      refresh: () => {
        const value = read(this.ctx.live.doc, path);
        setValue(input, typeof value === 'string' ? value : '');
        input.readOnly = !this.#writable(path);
      },
    });
    return h('div', {}, h('label', { for: id }, t(word)), input);
  }

  /** A choice stored as a string, or (with `codec`) as another plain value. */
  #select(
    path: string,
    word: Word,
    options: Array<[string, string]>,
    codec: SelectCodec = STRING_CHOICE,
  ): HTMLElement {
    const id = fieldId(path);
    const select = h(
      'select',
      { id, 'data-path': path },
      h('option', { value: '' }, t('choose')),
      ...options.map(([value, label]) => h('option', { value }, label)),
    );
    select.addEventListener('change', () =>
      this.#write(path, select.value === '' ? undefined : codec.toDoc(select.value)),
    );
    this.#bindings.push({
      path,
      refresh: () => {
        select.value = codec.fromDoc(read(this.ctx.live.doc, path));
        select.disabled = !this.#writable(path);
      },
    });
    return h('div', {}, h('label', { for: id }, t(word)), select);
  }

  /** A required yes/no: a select rather than a checkbox, so "not answered" stays visible. */
  #yesNo(path: string, word: Word): HTMLElement {
    return this.#select(
      path,
      word,
      [
        ['yes', t('yes')],
        ['no', t('no')],
      ],
      YES_NO,
    );
  }

  #checkbox(path: string, word: Word): HTMLElement {
    const id = fieldId(path);
    const input = h('input', { type: 'checkbox', id, 'data-path': path });
    input.addEventListener('change', () => this.#write(path, input.checked));
    this.#bindings.push({
      path,
      refresh: () => {
        input.checked = read(this.ctx.live.doc, path) === true;
        input.disabled = !this.#writable(path);
      },
    });
    return h('label', { class: 'inline', for: id }, input, h('span', {}, t(word)));
  }

  /** Sets (or, with undefined, deletes) a plain value at a dotted path. */
  #write(path: string, value: unknown): void {
    const parts = path.split('.');
    const key = parts.pop()!;
    const map = container(this.ctx.live.doc, parts.join('.'), true);
    if (!(map instanceof Y.Map)) return;
    if (map.get(key) === value) return;
    this.ctx.live.doc.transact(() => (value === undefined ? map.delete(key) : map.set(key, value)));
  }
}

/**
 * The Yjs value at a dotted path. With `create`, missing maps on the way are made; the server
 * creates the shared skeleton up front, so this only happens for groups one party owns alone.
 */
export function container(doc: Y.Doc, path: string, create: boolean): unknown {
  const [rootName, ...rest] = path.split('.');
  let node: unknown = doc.getMap(rootName!);
  for (const key of rest) {
    if (!(node instanceof Y.Map)) return undefined;
    let next: unknown = node.get(key);
    if (next === undefined && create) {
      next = new Y.Map();
      node.set(key, next);
    }
    node = next;
  }
  return node;
}

/** The plain value at a path (Y.Text as its string). */
export function read(doc: Y.Doc, path: string): unknown {
  const value = container(doc, path, false);
  if (value instanceof Y.Text) return value.toString();
  return value;
}

/** Updates an input without moving the caret of the driver typing in it more than needed. */
function setValue(input: HTMLInputElement | HTMLTextAreaElement, value: string): void {
  if (input.value === value) return;
  const focused = document.activeElement === input;
  const start = input.selectionStart;
  const end = input.selectionEnd;
  input.value = value;
  if (
    focused &&
    start !== null &&
    end !== null &&
    input.type !== 'date' &&
    input.type !== 'time' &&
    input.type !== 'number' &&
    input.type !== 'email'
  ) {
    input.setSelectionRange(Math.min(start, value.length), Math.min(end, value.length));
  }
}
