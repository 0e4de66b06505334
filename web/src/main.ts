/**
 * The reference app for the two drivers: sign in, open or join a constat, fill it together,
 * sketch, photograph, sign, follow the claim. Screens are chosen by the URL hash:
 *   #/                 home: open, join (code or QR), history
 *   #/session/<id>     the live constat
 *   #/constat/<id>     a finalized constat and its claim timeline
 * Everything goes through the public contract: GraphQL, the sync websocket, the upload slots.
 */
import { h, replace } from './dom.js';
import { t, setLang, currentLang, applyDirection, onLangChange } from './i18n.js';
import { Api, ApiError } from './api.js';
import { authProvider, deviceId, type Identity } from './auth.js';
import { LiveConstat, closeReason, type Role, type SessionEvent } from './live-constat.js';
import { FormView, type CircumstanceLabel } from './form.js';
import { SketchView } from './sketch.js';
import { PhotosView } from './photos.js';
import { SignView, type SessionSignature } from './sign-view.js';
import { historyList, constatDetail, pdfStatus } from './history.js';
import { joinCodeFromImage, qrImage, scanJoinCode } from './qr.js';
import { joinCodeOf } from './input-rules.js';
import { installOfflineShell } from './offline-shell.js';

interface Ticket {
  role: Role;
  syncUrl: string;
  joinCode?: string | null;
  qrPayload?: string | null;
  joinCodeExpiresAt?: string | null;
}

const main = document.getElementById('main')!;
const banners = document.getElementById('banners')!;
let identity: Identity | undefined;
let api: Api | undefined;
/** Ends what the current screen started (sockets, subscriptions). */
let leaveScreen: () => void = () => {};

applyDirection();
const langButton = document.getElementById('lang')!;
const title = document.getElementById('title')!;
const paintChrome = () => {
  // The button names the other language, in that language (its accessible name is its text).
  langButton.textContent = currentLang() === 'ar' ? 'Français' : 'عربي';
  langButton.lang = currentLang() === 'ar' ? 'fr' : 'ar';
  title.textContent = t('title');
  document.title = t('title');
};
paintChrome();
langButton.addEventListener('click', () => setLang(currentLang() === 'ar' ? 'fr' : 'ar'));
onLangChange(() => {
  paintChrome();
  void route();
});
window.addEventListener('hashchange', () => void route());
void start();
void installOfflineShell();

async function start(): Promise<void> {
  identity = await authProvider().current();
  if (identity) api = new Api(() => identity!.token);
  await route();
}

async function route(): Promise<void> {
  leaveScreen();
  leaveScreen = () => {};
  replace(banners);
  if (!identity || !api) return signInScreen();
  const [, screen, id] =
    location.hash.replace(/^#\/?/, '').split('/').length > 1
      ? ['', ...location.hash.replace(/^#\/?/, '').split('/')]
      : ['', '', ''];
  if (screen === 'session' && id) return sessionScreen(api, identity, id);
  if (screen === 'constat' && id) {
    const { element, stop } = constatDetail(api, id, () => (location.hash = '#/'));
    leaveScreen = stop;
    return replace(main, element);
  }
  return homeScreen(api);
}

function signInScreen(): void {
  const name = h('input', { type: 'text', id: 'name', autocomplete: 'name', required: true });
  const error = h('p', { class: 'error', role: 'alert' });
  const form = h(
    'form',
    { class: 'card' },
    h('h2', {}, t('signIn')),
    h('label', { for: 'name' }, t('yourName')),
    name,
    h('p', { class: 'hint' }, t('signInHint')),
    h('button', { type: 'submit', id: 'sign-in' }, t('signIn')),
    error,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!name.value.trim()) return;
    authProvider()
      .signIn(deviceId(), name.value.trim())
      .then(async (signedIn) => {
        identity = signedIn;
        api = new Api(() => identity!.token);
        await route();
      })
      .catch((err: unknown) => (error.textContent = (err as Error).message));
  });
  replace(main, form);
}

async function homeScreen(api: Api): Promise<void> {
  const versions = await api
    .request<{ formVersions: Array<{ id: string; name: string }> }>(`{ formVersions { id name } }`)
    .catch(() => ({ formVersions: [{ id: 'dz', name: 'dz' }] }));
  const version = h(
    'select',
    { id: 'form-version' },
    ...versions.formVersions.map((v) => h('option', { value: v.id }, v.name)),
  );
  const openError = h('p', { class: 'error', role: 'alert' });
  const open = h('button', { type: 'button', id: 'open' }, t('openSession'));
  open.addEventListener('click', () => {
    open.disabled = true;
    api
      .request<{ openSession: Ticket & { session: { id: string } } }>(
        `mutation Open($formVersion: String) { openSession(formVersion: $formVersion) {
          role syncUrl joinCode qrPayload joinCodeExpiresAt session { id } } }`,
        { formVersion: version.value },
      )
      .then(({ openSession }) => {
        saveTicket(openSession.session.id, openSession);
        location.hash = `#/session/${openSession.session.id}`;
      })
      .catch((err: unknown) => {
        open.disabled = false;
        openError.textContent = describe(err);
      });
  });

  const code = h('input', {
    type: 'text',
    id: 'join-code',
    inputmode: 'numeric',
    autocomplete: 'one-time-code',
    maxlength: 40,
    dir: 'ltr',
  });
  const joinError = h('p', { class: 'error', role: 'alert', id: 'join-error' });
  const join = (text: string) => {
    const joinCode = joinCodeOf(text);
    if (!joinCode) {
      joinError.textContent = t('joinCode');
      return;
    }
    api
      .request<{ joinSession: Ticket & { session: { id: string } } }>(
        `mutation Join($code: String!) { joinSession(code: $code) { role syncUrl session { id } } }`,
        { code: joinCode },
      )
      .then(({ joinSession }) => {
        saveTicket(joinSession.session.id, joinSession);
        location.hash = `#/session/${joinSession.session.id}`;
      })
      .catch((err: unknown) => (joinError.textContent = describe(err)));
  };
  const joinButton = h('button', { type: 'button', id: 'join' }, t('join'));
  joinButton.addEventListener('click', () => join(code.value));
  const video = h('video', { class: 'scanner', hidden: true, muted: true, playsinline: true });
  const scan = h('button', { type: 'button', class: 'secondary', id: 'scan' }, `📷 ${t('scan')}`);
  let stopScan: (() => void) | undefined;
  scan.addEventListener('click', () => {
    if (stopScan) {
      stopScan();
      stopScan = undefined;
      video.hidden = true;
      scan.textContent = `📷 ${t('scan')}`;
      return;
    }
    video.hidden = false;
    scan.textContent = t('stopScan');
    const scanning = scanJoinCode(video);
    stopScan = scanning.stop;
    scanning.code.then(
      (found) => {
        video.hidden = true;
        code.value = found;
        join(found);
      },
      (err: unknown) => {
        video.hidden = true;
        joinError.textContent = (err as Error).message;
      },
    );
  });
  // No camera (or no permission): a picture of the QR code, through the same decoder.
  const picture = h('input', {
    type: 'file',
    id: 'scan-file',
    class: 'sr-only',
    accept: 'image/*',
  });
  picture.addEventListener('change', () => {
    const file = picture.files?.[0];
    picture.value = '';
    if (!file) return;
    joinCodeFromImage(file).then(
      (found) => {
        code.value = found;
        join(found);
      },
      (err: unknown) => (joinError.textContent = (err as Error).message),
    );
  });
  const pictureLabel = h(
    'label',
    { for: 'scan-file', class: 'button-like', id: 'scan-file-label' },
    `🖼 ${t('scanImage')}`,
  );
  leaveScreen = () => stopScan?.();
  const signOut = h('button', { type: 'button', class: 'small', id: 'sign-out' }, t('signOut'));
  signOut.addEventListener('click', () => {
    void authProvider()
      .signOut()
      .then(() => {
        identity = undefined;
        return route();
      });
  });
  replace(
    main,
    h(
      'section',
      {},
      h('h2', {}, t('openSession')),
      h('label', { for: 'form-version' }, t('formVersion')),
      version,
      open,
      openError,
    ),
    h(
      'section',
      {},
      h('h2', {}, t('joinSession')),
      h('label', { for: 'join-code' }, t('joinCode')),
      code,
      h('div', { class: 'row' }, joinButton, scan),
      pictureLabel,
      picture,
      video,
      joinError,
    ),
    historyList(api, (id) => (location.hash = `#/constat/${id}`)),
    h('p', {}, `${identity?.name ?? ''} `, signOut),
  );
}

async function sessionScreen(api: Api, me: Identity, sessionId: string): Promise<void> {
  replace(main, h('p', {}, '…'));
  let ticket = loadTicket(sessionId);
  const info = await api
    .request<SessionDetails>(
      `query Session($id: ID!) {
        session(id: $id) { myRole formVersion status constatId signatures { role hash signedAt } }
        insurers { uid name }
        formVersions { id circumstances { id fr: label(lang: "fr") ar: label(lang: "ar") } } }`,
      { id: sessionId },
    )
    .then((details) => {
      saveDetails(sessionId, details);
      return details;
    })
    .catch((err: unknown) => {
      // Offline (a reload with the network down): the details last seen, and the document
      // from IndexedDB; the connection is made when the network is back.
      const saved = err instanceof ApiError && err.code === 'NETWORK' && loadDetails(sessionId);
      if (saved) return saved;
      replace(main, h('p', { class: 'error' }, describe(err)));
      return undefined;
    });
  if (!info) return;
  if (!info.session) return replace(main, h('p', { class: 'error' }, 'NOT_FOUND'));
  const session = info.session;
  ticket ??= {
    role: session.myRole,
    syncUrl: `${location.origin.replace(/^http/, 'ws')}/v1/sync/${sessionId}`,
  };
  let finalizedId = session.constatId;
  let status = session.status;
  const frozen = () =>
    !!finalizedId || ['FINALIZED', 'ABANDONED', 'EXPIRED'].includes(status) || !!live.state.closed;

  const live = new LiveConstat({
    sessionId,
    role: ticket.role,
    syncUrl: ticket.syncUrl,
    token: () => me.token,
    user: { name: me.name, userId: me.userId },
  });
  const circumstances =
    info.formVersions.find((v) => v.id === session.formVersion)?.circumstances ?? [];
  const form = new FormView({ live, circumstances, insurers: info.insurers, frozen });
  const sketch = new SketchView(live, frozen);
  const photos = new PhotosView(live, api, frozen);
  const signing = new SignView(live, api, me.userId, form, frozen);
  signing.showSignatures(session.signatures);

  const presence = h('div', { class: 'presence', id: 'presence' });
  const paintPresence = () => {
    const present = live.presentRoles();
    replace(
      presence,
      h('span', { class: 'chip on', 'data-role': ticket!.role }, `${t('youAre')} ${ticket!.role}`),
      ...(['A', 'B'] as const)
        .filter((r) => r !== ticket!.role)
        .map((r) =>
          h(
            'span',
            {
              class: `chip ${present.has(r) ? 'on' : ''}`,
              'data-presence': r,
              'data-here': String(present.has(r)),
            },
            `${r}: ${present.has(r) ? t('here') : t('away')}`,
          ),
        ),
    );
  };
  live.provider.awareness.on('change', paintPresence);
  paintPresence();

  const pairing = h('section', { id: 'pairing' });
  if (ticket.role === 'A' && ticket.joinCode && status === 'WAITING') {
    const img = h('img', { class: 'qr', alt: `QR ${ticket.qrPayload ?? ''}`, id: 'join-qr' });
    void qrImage(ticket.qrPayload ?? ticket.joinCode).then((src) => (img.src = src));
    replace(
      pairing,
      h('h2', {}, t('showCode')),
      h('p', { class: 'code', id: 'join-code-shown' }, ticket.joinCode),
      img,
    );
  } else {
    pairing.hidden = true;
  }

  const finalizedCard = h('section', { id: 'finalized', hidden: true });
  let stopPdf = () => {};
  const showFinalized = (constatId: string) => {
    if (finalizedId === constatId && !finalizedCard.hidden) return;
    finalizedId = constatId;
    finalizedCard.hidden = false;
    const pdf = pdfStatus(api, constatId);
    stopPdf = pdf.stop;
    replace(
      finalizedCard,
      h('h2', {}, `✓ ${t('finalized')}`),
      h('p', {}, `${t('constatId')}: `, h('bdi', { class: 'ltr', id: 'constat-id' }, constatId)),
      pdf.element,
      h(
        'button',
        {
          type: 'button',
          class: 'secondary',
          id: 'open-constat',
          onclick: () => (location.hash = `#/constat/${constatId}`),
        },
        t('history'),
      ),
    );
    form.refresh();
    sketch.render();
    signing.showSignatures([]);
    paintBanners();
  };

  const paintBanners = () => {
    const s = live.state;
    const items: HTMLElement[] = [];
    if (finalizedId)
      items.push(
        h('div', { class: 'banner done', id: 'banner-done' }, `${t('finalized')} · ${finalizedId}`),
      );
    if (!s.online)
      items.push(
        h('div', { class: 'banner offline', id: 'banner-offline', role: 'status' }, t('offline')),
      );
    else if (s.status !== 'connected' && !s.closed)
      items.push(
        h(
          'div',
          { class: 'banner offline', id: 'banner-reconnecting', role: 'status' },
          t('reconnecting'),
        ),
      );
    if (s.refused)
      items.push(
        h(
          'div',
          { class: 'banner refused', id: 'banner-refused', role: 'alert' },
          `${t('refused')}: `,
          // The server's reason is English: keep it in its own direction inside Arabic text.
          h('bdi', {}, `${s.refused.reason} (${s.refused.code})`),
        ),
      );
    if (s.closed && !(s.closed.code === 4409 && finalizedId)) {
      const reset = h(
        'button',
        { type: 'button', class: 'small', id: 'reset-local' },
        t('reloadFromServer'),
      );
      reset.addEventListener('click', () => void live.resetFromServer().then(() => route()));
      items.push(
        h(
          'div',
          {
            class: 'banner refused',
            id: 'banner-closed',
            role: 'alert',
            'data-code': s.closed.code,
          },
          `${t('closed')}: `,
          h('bdi', {}, `${s.closed.code} · ${s.closed.reason || closeReason(s.closed.code)}`),
          ' ',
          reset,
        ),
      );
    }
    replace(banners, ...items);
  };
  live.onState(() => {
    paintBanners();
    form.refresh();
  });
  live.onEvent((event: SessionEvent) => {
    if (event.type === 'finalized') showFinalized(event.constatId);
    if (event.type === 'signatures-voided') signing.message(t('voided'), 'hint');
    if (event.type === 'signed' || event.type === 'signatures-voided') void refreshSession();
  });
  const refreshSession = async () => {
    const data = await api
      .request<{
        session: {
          status: string;
          constatId: string | null;
          signatures: SessionSignature[];
        } | null;
      }>(
        `query S($id: ID!) { session(id: $id) { status constatId signatures { role hash signedAt } } }`,
        { id: sessionId },
      )
      .catch(() => undefined);
    if (!data?.session) return;
    // What an offline start of this screen will show: the latest state, not the first.
    if (info.session)
      saveDetails(sessionId, { ...info, session: { ...info.session, ...data.session } });
    status = data.session.status;
    if (status !== 'WAITING') pairing.hidden = true;
    signing.showSignatures(data.session.signatures);
    if (data.session.constatId && !finalizedId) showFinalized(data.session.constatId);
    void photos.refreshStatus();
  };
  const unsubscribe = api.subscribe<{ sessionChanged: { id: string } }>(
    `subscription Changed($id: ID!) { sessionChanged(id: $id) { id } }`,
    { id: sessionId },
    () => void refreshSession(),
    () => {},
  );
  leaveScreen = () => {
    unsubscribe();
    stopPdf();
    live.destroy();
  };

  const home = h('button', { type: 'button', class: 'small', id: 'home' }, t('back'));
  home.addEventListener('click', () => (location.hash = '#/'));
  replace(
    main,
    finalizedCard,
    pairing,
    h(
      'section',
      {},
      presence,
      h(
        'p',
        { class: 'hint' },
        `${t('youAre')} ${ticket.role} · `,
        h('bdi', { class: 'ltr' }, sessionId.slice(0, 8)),
        ' ',
        home,
      ),
    ),
    form.element,
    sketch.element,
    photos.element,
    signing.element,
  );
  if (finalizedId) showFinalized(finalizedId);
  paintBanners();
  form.refresh();
}

function describe(err: unknown): string {
  return err instanceof ApiError ? `${err.message} (${err.code})` : (err as Error).message;
}

function saveTicket(sessionId: string, ticket: Ticket): void {
  const { role, syncUrl, joinCode, qrPayload, joinCodeExpiresAt } = ticket;
  sessionStorage.setItem(
    `constat.ticket.${sessionId}`,
    JSON.stringify({ role, syncUrl, joinCode, qrPayload, joinCodeExpiresAt }),
  );
}

interface SessionDetails {
  session: {
    myRole: Role;
    formVersion: string;
    status: string;
    constatId: string | null;
    signatures: SessionSignature[];
  } | null;
  insurers: Array<{ uid: string; name: string }>;
  formVersions: Array<{ id: string; circumstances: CircumstanceLabel[] }>;
}

/** What the session screen needs besides the document, kept for a start without network. */
function saveDetails(sessionId: string, details: SessionDetails): void {
  if (!details.session) return;
  try {
    localStorage.setItem(`constat.details.${sessionId}`, JSON.stringify(details));
  } catch {
    // A full storage only costs the offline start of this session.
  }
}

function loadDetails(sessionId: string): SessionDetails | undefined {
  const raw = localStorage.getItem(`constat.details.${sessionId}`);
  return raw ? (JSON.parse(raw) as SessionDetails) : undefined;
}

function loadTicket(sessionId: string): Ticket | undefined {
  const raw = sessionStorage.getItem(`constat.ticket.${sessionId}`);
  return raw ? (JSON.parse(raw) as Ticket) : undefined;
}
