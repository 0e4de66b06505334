/**
 * The driver's constats: a paged list (Relay cursors), and one constat with its claim timeline
 * per insurer, kept current by the `constatChanged` subscription (SSE).
 */
import { h, replace } from './dom.js';
import { t } from './i18n.js';
import { isMissingField, type Api } from './api.js';

interface ConstatSummary {
  id: string;
  status: string;
  finalizedAt: string;
  parties: Array<{ role: string; userId: string; insurer: { name: string } | null }>;
}

const PAGE = 5;

export function historyList(api: Api, open: (id: string) => void): HTMLElement {
  const list = h('ul', { class: 'list', id: 'history' });
  const more = h(
    'button',
    { type: 'button', class: 'secondary', id: 'history-more', hidden: true },
    t('more'),
  );
  const status = h('p', { class: 'hint' });
  let after: string | null = null;
  const load = async () => {
    more.disabled = true;
    try {
      const data = await api.request<{
        constats: {
          edges: Array<{ node: ConstatSummary }>;
          pageInfo: { hasNextPage: boolean; endCursor: string | null };
        };
      }>(
        `query History($first: Int, $after: String) { constats(first: $first, after: $after) {
          edges { node { id status finalizedAt parties { role userId insurer { name } } } }
          pageInfo { hasNextPage endCursor } } }`,
        { first: PAGE, after },
      );
      for (const { node } of data.constats.edges) {
        const item = h(
          'li',
          { 'data-constat': node.id },
          h(
            'button',
            { type: 'button', class: 'secondary', onclick: () => open(node.id) },
            h('bdi', { class: 'ltr' }, node.id.slice(0, 8)),
            ` · ${node.status} · ${new Date(node.finalizedAt).toLocaleString()}`,
          ),
          h(
            'p',
            { class: 'hint' },
            node.parties.map((p) => `${p.role}: ${p.insurer?.name ?? '—'}`).join(' · '),
          ),
        );
        list.append(item);
      }
      if (list.childElementCount === 0) status.textContent = t('none');
      else status.textContent = '';
      after = data.constats.pageInfo.endCursor;
      more.hidden = !data.constats.pageInfo.hasNextPage;
    } catch (err) {
      status.textContent = (err as Error).message;
      status.className = 'error';
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', () => void load());
  void load();
  return h('section', { id: 'history-card' }, h('h2', {}, t('history')), list, status, more);
}

interface ConstatDetail {
  id: string;
  status: string;
  finalizedAt: string;
  contentHash: string;
  parties: Array<{ role: string; userId: string; insurer: { name: string } | null }>;
  claims: Array<{
    insurer: { name: string };
    claimNumber: string | null;
    status: string;
    events: Array<{ id: string; type: string; time: string }>;
  }>;
  pdfUrl?: string | null;
  pdf?: { url: string; sha256: string; version: number } | null;
}

const DETAIL_FIELDS = `id status finalizedAt contentHash parties { role userId insurer { name } }
  claims { insurer { name } claimNumber status events { id type time } }`;

/** Asks for `pdf { url }` (the report), falling back to the older `pdfUrl` field. */
export async function loadConstat(api: Api, id: string): Promise<ConstatDetail | null> {
  try {
    const data = await api.request<{ constat: ConstatDetail | null }>(
      `query Constat($id: ID!) { constat(id: $id) { ${DETAIL_FIELDS} pdf { url sha256 version } } }`,
      { id },
    );
    return data.constat;
  } catch (err) {
    if (!isMissingField(err)) throw err;
    const data = await api.request<{ constat: ConstatDetail | null }>(
      `query Constat($id: ID!) { constat(id: $id) { ${DETAIL_FIELDS} pdfUrl } }`,
      { id },
    );
    return data.constat;
  }
}

export function constatDetail(
  api: Api,
  id: string,
  back: () => void,
): { element: HTMLElement; stop: () => void } {
  const body = h('div', { id: 'constat-detail' }, '…');
  const render = (c: ConstatDetail | null) => {
    if (!c) return replace(body, h('p', { class: 'error' }, 'NOT_FOUND'));
    const pdf = c.pdf?.url ?? c.pdfUrl;
    replace(
      body,
      h('p', {}, `${t('constatId')}: `, h('bdi', { class: 'ltr', id: 'detail-id' }, c.id)),
      h('p', {}, `${t('status')}: `, h('span', { class: 'status', id: 'detail-status' }, c.status)),
      h('p', { class: 'hash' }, c.contentHash),
      h(
        'ul',
        { class: 'list' },
        ...c.parties.map((p) => h('li', {}, `${p.role} · ${p.insurer?.name ?? '—'}`)),
      ),
      pdf
        ? h(
            'p',
            {},
            h('a', { href: pdf, target: '_blank', rel: 'noopener', id: 'pdf-link' }, t('pdf')),
          )
        : h('p', { class: 'hint', id: 'pdf-pending' }, t('pdfPending')),
      h('h3', {}, t('timeline')),
      h(
        'ul',
        { class: 'list', id: 'timeline' },
        ...c.claims.flatMap((claim) =>
          claim.events.map((e) =>
            h(
              'li',
              { 'data-event': e.type },
              `${new Date(e.time).toLocaleString()} · ${claim.insurer.name}${claim.claimNumber ? ` (${claim.claimNumber})` : ''} · ${e.type}`,
            ),
          ),
        ),
      ),
    );
  };
  const stop = watchConstat(api, id, render, (err) =>
    replace(body, h('p', { class: 'error' }, err.message)),
  );
  const backButton = h('button', { type: 'button', class: 'secondary', id: 'back' }, t('back'));
  backButton.addEventListener('click', back);
  return {
    element: h('section', { id: 'constat' }, h('h2', {}, t('history')), body, backButton),
    stop,
  };
}

/**
 * The PDF link once the report is rendered; until then a "being prepared" line. The server
 * announces the rendered report on `constatChanged` (its report version is part of what a
 * subscriber is told about), so there is no polling: the constat is read when the stream is
 * established and again at each message.
 */
export function pdfStatus(api: Api, id: string): { element: HTMLElement; stop: () => void } {
  const element = h('p', { class: 'hint', id: 'pdf-status' }, t('pdfPending'));
  let found = false;
  const show = (c: ConstatDetail | null) => {
    const url = c?.pdf?.url ?? c?.pdfUrl;
    if (!url || found) return;
    found = true;
    replace(
      element,
      h('a', { href: url, target: '_blank', rel: 'noopener', id: 'pdf-link' }, t('pdf')),
    );
  };
  return { element, stop: watchConstat(api, id, show, () => {}) };
}

/**
 * Loads a constat now, again each time the subscription is (re)established, and at each of its
 * messages; returns the stop.
 */
function watchConstat(
  api: Api,
  id: string,
  onData: (c: ConstatDetail | null) => void,
  onError: (err: Error) => void,
): () => void {
  const refresh = () => loadConstat(api, id).then(onData, (err: unknown) => onError(err as Error));
  void refresh();
  return api.subscribe<{ constatChanged: { id: string } }>(
    `subscription Changed($id: ID!) { constatChanged(id: $id) { id } }`,
    { id },
    () => void refresh(),
    () => {},
    () => void refresh(),
  );
}
