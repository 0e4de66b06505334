/**
 * "I have read and I sign": shows the hash of the content as this phone has it, checks that
 * the server's copy has the same hash (so the driver signs what they see), signs it with the
 * device key and sends the signature. Refusals come back as they are: missing or invalid
 * fields beside their inputs, anything else in the message line.
 */
import { canonicalJson } from '../../constat/canonical-json.js';
import { materialise } from '../../constat/constat-doc.js';
import { h, replace } from './dom.js';
import { t } from './i18n.js';
import { ApiError, type Api } from './api.js';
import { deviceKey, signContent } from './device-key.js';
import { toHex } from './input-rules.js';
import type { FormView } from './form.js';
import type { LiveConstat } from './live-constat.js';

export interface SessionSignature {
  role: 'A' | 'B';
  hash: string;
  signedAt: string;
}

export async function localContentHash(live: LiveConstat): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson(materialise(live.doc)));
  return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)));
}

export class SignView {
  readonly element: HTMLElement;
  readonly #hash = h('p', { class: 'hash', id: 'content-hash' }, '…');
  readonly #signatures = h('ul', { class: 'list', id: 'signatures' });
  readonly #message = h('div', { id: 'sign-message', role: 'status' });
  readonly #button: HTMLButtonElement;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly live: LiveConstat,
    private readonly api: Api,
    private readonly userId: string,
    private readonly form: FormView,
    private readonly frozen: () => boolean,
  ) {
    this.#button = h('button', { type: 'button', id: 'sign' }, t('iSign'));
    this.#button.addEventListener('click', () => void this.sign());
    this.element = h(
      'section',
      { id: 'signing' },
      h('h2', {}, t('sign')),
      h('p', { class: 'hint' }, t('contentHash')),
      this.#hash,
      this.#signatures,
      this.#button,
      this.#message,
    );
    live.doc.on('afterTransaction', () => this.#scheduleHash());
    this.#scheduleHash();
  }

  #scheduleHash(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      void localContentHash(this.live).then((hash) => {
        this.#hash.textContent = hash;
      });
    }, 150);
  }

  showSignatures(signatures: SessionSignature[]): void {
    replace(
      this.#signatures,
      ...(['A', 'B'] as const).map((role) => {
        const s = signatures.find((x) => x.role === role);
        return h(
          'li',
          { 'data-signed': s ? role : '' },
          `${role}: `,
          s
            ? `${t('signedBy')} ${role} · ${new Date(s.signedAt).toLocaleString()}`
            : t('notSigned'),
        );
      }),
    );
    this.#button.disabled = this.frozen() || signatures.some((s) => s.role === this.live.role);
  }

  message(text: string, kind: 'error' | 'ok' | 'hint'): void {
    replace(this.#message, h('p', { class: kind }, text));
  }

  async sign(): Promise<void> {
    if (this.frozen()) return;
    this.#button.disabled = true;
    try {
      const { sessionId } = this.live.options;
      // The last keystrokes may still be on their way: give the server a moment to agree.
      let hash = '';
      let serverHash = '';
      for (let attempt = 0; attempt < 10 && (hash === '' || hash !== serverHash); attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, 300));
        hash = await localContentHash(this.live);
        const { session } = await this.api.request<{ session: { contentHash: string } | null }>(
          `query Hash($id: ID!) { session(id: $id) { contentHash } }`,
          { id: sessionId },
        );
        if (!session) throw new ApiError('NOT_FOUND', 'session not found');
        serverHash = session.contentHash;
      }
      if (serverHash !== hash) {
        // The server has not received every edit of this phone yet, or this phone lacks the
        // other driver's latest: signing now would sign something the driver has not seen.
        this.message(t('waitSync'), 'hint');
        return;
      }
      const key = await deviceKey(this.api, this.userId);
      const signature = await signContent(key, sessionId, this.live.role, hash);
      await this.api.request(
        `mutation Sign($sessionId: ID!, $contentHash: String!, $signature: String!) {
          signConstat(sessionId: $sessionId, contentHash: $contentHash, signature: $signature) { id status } }`,
        { sessionId, contentHash: hash, signature },
      );
      this.form.showErrors([]);
      this.message(`${t('signedBy')} ${this.live.role} ✓`, 'ok');
    } catch (err) {
      if (err instanceof ApiError && err.fieldErrors.length > 0) {
        const unplaced = this.form.showErrors(err.fieldErrors);
        replace(
          this.#message,
          h('p', { class: 'error', role: 'alert' }, `${t('incomplete')} ${err.fieldErrors.length}`),
          h(
            'ul',
            {},
            ...unplaced.map((e) => h('li', { class: 'error' }, `${e.path}: ${e.message}`)),
          ),
        );
        this.form.element.querySelector('.invalid')?.scrollIntoView({ block: 'center' });
      } else {
        this.message(
          `${(err as Error).message}${err instanceof ApiError ? ` (${err.code})` : ''}`,
          'error',
        );
      }
    } finally {
      this.#button.disabled = this.frozen();
    }
  }
}
