/**
 * Photos of damage, the scene and papers, sent through the media flow (docs/media.md): ask the
 * server for an upload slot (`requestUpload`), send the bytes there, then record the attachment
 * in this driver's own section (`vehicleA.attachments`, `vehicleB.attachments`, or
 * `accident.attachments` for scene photos). Thumbnails show each attachment's status as the
 * server sees it (PENDING until it has checked the bytes against the hash).
 */
import * as Y from 'yjs';
import { h, replace } from './dom.js';
import { t } from './i18n.js';
import { ApiError, isMissingField, type Api } from './api.js';
import { toHex } from './input-rules.js';
import { container } from './form.js';
import { ATTACHMENT_KINDS } from '../../constat/attachments.js';
import type { LiveConstat } from './live-constat.js';

const MAX_BYTES = 15 * 1024 * 1024;

interface Slot {
  attachmentId: string;
  url: string;
  method: string;
  headers: Array<{ name: string; value: string }>;
}

interface ServerAttachment {
  id: string;
  status: string;
  url: string | null;
  kind: string;
}

export class PhotosView {
  readonly element: HTMLElement;
  readonly #grid = h('div', { class: 'thumbs', id: 'thumbs' });
  readonly #message = h('p', { class: 'hint', role: 'status', id: 'photo-message' });
  readonly #local = new Map<string, string>(); // attachment id -> object URL of the bytes sent
  #server = new Map<string, ServerAttachment>();
  #unavailable = false;
  #poll: ReturnType<typeof setTimeout> | undefined;
  #polls = 0;

  constructor(
    private readonly live: LiveConstat,
    private readonly api: Api,
    private readonly frozen: () => boolean,
  ) {
    const kind = h(
      'select',
      { id: 'photo-kind' },
      ...ATTACHMENT_KINDS.map((k) => h('option', { value: k }, k.replace('_', ' '))),
    );
    const take = h('input', {
      type: 'file',
      accept: 'image/*',
      capture: 'environment',
      id: 'photo-take',
      class: 'sr-only',
    });
    const pick = h('input', {
      type: 'file',
      accept: 'image/jpeg,image/png,image/webp',
      id: 'photo-pick',
      class: 'sr-only',
    });
    for (const input of [take, pick]) {
      input.addEventListener('change', () => {
        const file = input.files?.[0];
        input.value = '';
        if (file) void this.#upload(file, kind.value);
      });
    }
    this.element = h(
      'section',
      { id: 'photos' },
      h('h2', {}, t('photos')),
      h('label', { for: 'photo-kind' }, t('photoKind')),
      kind,
      h(
        'div',
        { class: 'row' },
        h(
          'label',
          { for: 'photo-take', class: 'button-like' },
          h('span', { class: 'chip' }, `📷 ${t('takePhoto')}`),
        ),
        take,
        h(
          'label',
          { for: 'photo-pick', class: 'button-like' },
          h('span', { class: 'chip' }, `🖼 ${t('pickPhoto')}`),
        ),
        pick,
      ),
      this.#message,
      this.#grid,
    );
    live.doc.on('afterTransaction', () => this.render());
    void this.refreshStatus();
    this.render();
  }

  /** Reads the attachments' status from the server. */
  async refreshStatus(): Promise<void> {
    try {
      const data = await this.api.request<{ session: { attachments: ServerAttachment[] } | null }>(
        `query Attachments($id: ID!) { session(id: $id) { attachments { id status url kind } } }`,
        { id: this.live.options.sessionId },
      );
      this.#server = new Map((data.session?.attachments ?? []).map((a) => [a.id, a]));
    } catch (err) {
      if (isMissingField(err)) this.#setUnavailable();
    }
    this.render();
  }

  #setUnavailable(): void {
    this.#unavailable = true;
    this.#message.textContent = t('photosUnavailable');
    this.#message.className = 'error';
    this.#message.dataset.state = 'unavailable';
  }

  async #upload(file: File, kind: string): Promise<void> {
    if (this.frozen()) return;
    if (file.size > MAX_BYTES) {
      this.#message.textContent = `${file.name}: > ${MAX_BYTES / 1024 / 1024} MB`;
      this.#message.className = 'error';
      return;
    }
    this.#message.textContent = `${file.name}: ${t('uploading')}`;
    this.#message.className = 'hint';
    const bytes = new Uint8Array(await file.arrayBuffer());
    const sha256 = toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)));
    try {
      const { requestUpload: slot } = await this.api.request<{ requestUpload: Slot }>(
        `mutation Upload($sessionId: ID!, $kind: String!, $contentType: String!, $byteSize: Int!, $sha256: String!) {
          requestUpload(sessionId: $sessionId, kind: $kind, contentType: $contentType, byteSize: $byteSize, sha256: $sha256) {
            attachmentId url method headers { name value } expiresAt } }`,
        {
          sessionId: this.live.options.sessionId,
          kind,
          contentType: file.type || 'image/jpeg',
          byteSize: bytes.byteLength,
          sha256,
        },
      );
      const res = await fetch(slot.url, {
        method: slot.method,
        headers: Object.fromEntries(slot.headers.map((x) => [x.name, x.value])),
        body: bytes,
      });
      if (!res.ok) throw new ApiError('UPLOAD', `upload refused (HTTP ${res.status})`);
      this.#local.set(slot.attachmentId, URL.createObjectURL(file));
      const section = kind === 'scene' ? 'accident' : `vehicle${this.live.role}`;
      const map = container(this.live.doc, `${section}.attachments`, true);
      if (map instanceof Y.Map) {
        map.set(slot.attachmentId, {
          id: slot.attachmentId,
          kind,
          contentType: file.type || 'image/jpeg',
          byteSize: bytes.byteLength,
          sha256,
          takenAt: new Date(file.lastModified || Date.now()).toISOString(),
        });
      }
      this.#message.textContent = `${file.name} ✓`;
      this.#message.className = 'ok';
      this.#polls = 0;
    } catch (err) {
      if (isMissingField(err)) return this.#setUnavailable();
      this.#message.textContent = `${file.name}: ${(err as Error).message}`;
      this.#message.className = 'error';
    }
  }

  render(): void {
    if (this.#unavailable && this.#grid.childElementCount === 0) return;
    const items: Array<{ id: string; kind: string }> = [];
    for (const section of ['accident', 'vehicleA', 'vehicleB']) {
      const map = container(this.live.doc, `${section}.attachments`, false);
      if (!(map instanceof Y.Map)) continue;
      for (const [id, value] of map.entries()) {
        const kind = (value as { kind?: unknown })?.kind;
        items.push({ id, kind: typeof kind === 'string' ? kind : 'other' });
      }
    }
    replace(
      this.#grid,
      ...items.map(({ id, kind }) => {
        const server = this.#server.get(id);
        const src = this.#local.get(id) ?? server?.url ?? undefined;
        const status = server?.status ?? 'PENDING';
        return h(
          'figure',
          { 'data-attachment': id, 'data-status': status },
          src ? h('img', { src, alt: kind }) : h('div', { class: 'chip' }, kind),
          h('figcaption', {}, `${kind} · ${t('attachmentStatus')}: ${status}`),
        );
      }),
    );
    // The server checks a file when asked: ask again while one is not settled yet.
    const unsettled = items.some(
      ({ id }) => (this.#server.get(id)?.status ?? 'PENDING') === 'PENDING',
    );
    if (unsettled && !this.#poll && this.#polls < 30) {
      this.#polls += 1;
      this.#poll = setTimeout(() => {
        this.#poll = undefined;
        void this.refreshStatus();
      }, 1_000);
    }
  }
}
