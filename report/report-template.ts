/**
 * The HTML of the signed report, laid out like the paper form: header, accident, the two
 * vehicle columns (A blue on the left, B yellow on the right), the circumstance boxes between
 * them in both languages, the sketch, attachments, the signatures with their key fingerprints,
 * the content hash and a QR code to the verification page, and the footer saying the document
 * is not an admission of liability. Pure: the same input always gives the same HTML.
 *
 * Every label is printed in the form version's two languages (dz: French and Arabic). Values
 * come from phones: every one is escaped, and each sits in a `<bdi>` so an Arabic name cannot
 * reorder the text around it; identifiers, dates and numbers get `<bdi dir="ltr">` so
 * `12345-115-16` keeps its order inside Arabic text. The liability suggestion is deliberately
 * not an input: it is for insurers, never printed on the drivers' copy.
 */
import { createHash } from 'node:crypto';
import type {
  AccidentSection,
  SignatureRecord,
  VehicleSection,
  Witness,
} from '../constat/constat-doc.js';
import type { Role } from '../constat/permissions.js';
import { labelIn, type FormVersion, type Language } from '../constat/form-versions.js';
import type { FieldLabelKey } from '../constat/form-labels.js';
import { escapeHtml } from './html.js';
import { impactSvg, sketchSvg, ROLE_COLOURS } from './sketch-svg.js';

/** Bumped whenever the template's output changes: a re-render then adds a new version. */
export const TEMPLATE_VERSION = 'report-2026-12-v1';

export interface ReportAttachment {
  id: string;
  /** 'vehicleA' | 'vehicleB' | 'accident'. */
  section: string;
  kind: string;
  contentType: string;
  byteSize: number;
  sha256: string;
  takenAt?: string;
  /** A data: URI of a small image, for photos the media store holds. */
  thumbnail?: string;
}

export interface ReportInput {
  constatId: string;
  form: FormVersion;
  finalizedAt: Date;
  contentHash: string;
  content: {
    accident: AccidentSection;
    vehicleA: VehicleSection;
    vehicleB: VehicleSection;
    sketch: { elements?: unknown };
  };
  signatures: Partial<Record<Role, SignatureRecord>>;
  /** Company uid -> display name. */
  insurerName: (uid: string) => string;
  verifyUrl: string;
  /** The QR code of `verifyUrl`, as an SVG element. */
  qrSvg: string;
  attachments: ReportAttachment[];
}

const RTL: ReadonlySet<Language> = new Set(['ar']);

/** Text a phone wrote: escaped, isolated, direction from its own first strong character. */
const v = (value: unknown): string =>
  typeof value === 'string' && value.trim() !== ''
    ? `<bdi>${escapeHtml(value)}</bdi>`
    : typeof value === 'number' && Number.isFinite(value)
      ? id(String(value))
      : '<span class="empty">—</span>';

/** An identifier, date or number: always left to right, whatever the text around it. */
const id = (value: unknown): string =>
  typeof value === 'string' && value !== ''
    ? `<bdi dir="ltr">${escapeHtml(value)}</bdi>`
    : typeof value === 'number' && Number.isFinite(value)
      ? `<bdi dir="ltr">${value}</bdi>`
      : '<span class="empty">—</span>';

export interface ReportHtml {
  /** The document. */
  html: string;
  /** Printed at the bottom of every page (Chromium's footer template: inline styles only). */
  footer: string;
}

export function renderReportHtml(input: ReportInput): ReportHtml {
  const { form } = input;
  const [main, second] = form.languages;
  const label = (key: FieldLabelKey) => bilingual(form.fields[key], main, second);
  const yesNo = (value: unknown) =>
    value === true ? label('yes') : value === false ? label('no') : v(undefined);
  // Like the paper form: the main language's label on the left, the value, the second
  // language's label on the right.
  const row = (key: FieldLabelKey, value: string) =>
    `<tr><th>${one(form.fields[key], main)}</th><td>${value}</td><th class="second">${one(form.fields[key], second)}</th></tr>`;
  const { accident } = input.content;
  const place = accident.place ?? {};
  const gps =
    place.gps && typeof place.gps.lat === 'number' && typeof place.gps.lon === 'number'
      ? id(`${place.gps.lat.toFixed(5)}, ${place.gps.lon.toFixed(5)}`)
      : v(undefined);
  const witnesses = Array.isArray(accident.witnesses) ? accident.witnesses.slice(0, 10) : [];

  const vehicleColumn = (role: Role) => {
    const s = role === 'A' ? input.content.vehicleA : input.content.vehicleB;
    const p = s.policyholder ?? {};
    const veh = s.vehicle ?? {};
    const ins = s.insurer ?? {};
    const d = s.driver ?? {};
    const company = typeof ins.company === 'string' ? input.insurerName(ins.company) : undefined;
    const makeModel = [veh.make, veh.model].filter((x) => typeof x === 'string' && x).join(' ');
    return `
    <section class="vehicle v${role}">
      <h2>${label(role === 'A' ? 'vehicleA' : 'vehicleB')}</h2>
      <h3>${label('policyholder')}</h3>
      <table>${row('lastName', v(p.lastName))}${row('firstName', v(p.firstName))}${row('address', v(p.address))}${row('phone', id(p.phone))}${row('email', id(p.email))}</table>
      <h3>${label('vehicle')}</h3>
      <table>${row('makeModel', v(makeModel))}${row('plate', `<span class="plate">${id(veh.plate)}</span>`)}${row('plateCountry', id(veh.plateCountry))}${veh.trailerPlate ? row('trailerPlate', id(veh.trailerPlate)) : ''}</table>
      <h3>${label('insurer')}</h3>
      <table>${row('company', v(company))}${row('policyNumber', id(ins.policyNumber))}${ins.greenCardNumber ? row('greenCardNumber', id(ins.greenCardNumber)) : ''}${row('validFromTo', `${id(ins.validFrom)} → ${id(ins.validTo)}`)}${row('agency', v(ins.agency))}${row('coversOwnDamage', yesNo(ins.coversOwnDamage))}</table>
      <h3>${label('driver')}</h3>
      <table>${row('lastName', v(d.lastName))}${row('firstName', v(d.firstName))}${row('birthDate', id(d.birthDate))}${row('address', v(d.address))}${row('licenceNumber', id(d.licenceNumber))}${row('licenceCategory', id(d.licenceCategory))}${row('licenceIssuedOn', id(d.licenceIssuedOn))}${row('licenceIssuedBy', v(d.licenceIssuedBy))}${row('licenceValidUntil', id(d.licenceValidUntil))}${row('comingFrom', v(s.comingFrom))}${row('goingTo', v(s.goingTo))}</table>
      <div class="impact-row"><div><h3>${label('impactPoint')}</h3>${impactSvg(role, s.impactPoint)}</div>
        <div class="grow"><h3>${label('visibleDamage')}</h3><p>${v(s.visibleDamage)}</p>
        <h3>${label('remarks')}</h3><p>${v(s.remarks)}</p></div></div>
    </section>`;
  };

  const ticked = (role: Role) => {
    const s = role === 'A' ? input.content.vehicleA : input.content.vehicleB;
    const c = s.circumstances;
    return typeof c === 'object' && c !== null ? (c as Record<string, unknown>) : {};
  };
  const tA = ticked('A');
  const tB = ticked('B');
  const box = (on: boolean, role: Role) =>
    `<span class="box b${role}${on ? ' on' : ''}">${on ? '✕' : ''}</span>`;
  const circumstanceRows = form.circumstances
    .map((c) => {
      const key = String(c.id);
      return `<tr><td class="tick">${box(tA[key] === true, 'A')}</td><td class="cl" lang="${main}" dir="${RTL.has(main) ? 'rtl' : 'ltr'}">${escapeHtml(labelIn(c.labels, main))}</td><td class="num">${c.id}</td><td class="cl" lang="${second}" dir="${RTL.has(second) ? 'rtl' : 'ltr'}">${escapeHtml(labelIn(c.labels, second))}</td><td class="tick">${box(tB[key] === true, 'B')}</td></tr>`;
    })
    .join('');
  const count = (role: Role) => {
    const s = role === 'A' ? input.content.vehicleA : input.content.vehicleB;
    return id(typeof s.circumstanceCount === 'number' ? s.circumstanceCount : undefined);
  };

  const signatureBlock = (role: Role) => {
    const sig = input.signatures[role];
    const colour = ROLE_COLOURS[role];
    if (!sig) {
      return `<div class="sig" style="border-color:${colour.stroke}"><h3>${label(role === 'A' ? 'vehicleA' : 'vehicleB')}</h3><p>${label('notSigned')}</p></div>`;
    }
    return `<div class="sig" style="border-color:${colour.stroke};background:${colour.fill}">
      <h3>${label(role === 'A' ? 'vehicleA' : 'vehicleB')}</h3>
      <table>${row('signedAt', id(sig.signedAt))}${row('deviceId', id(sig.deviceId))}${row('keyFingerprint', `<code>${id(keyFingerprint(sig.publicKey))}</code>`)}</table>
      <div class="label-line">${label('signature')}</div><code class="long">${id(sig.signature)}</code>
    </div>`;
  };

  const attachments = input.attachments.slice(0, 40);
  const sectionLabel = (section: string) =>
    section === 'vehicleA' || section === 'vehicleB' || section === 'accident'
      ? label(section)
      : id(section);
  const attachmentSection =
    attachments.length === 0
      ? ''
      : `<section class="attachments"><h2>${label('attachments')}</h2><table class="grid">
      ${attachments
        .map(
          (a) =>
            `<tr><td class="thumb" rowspan="2">${a.thumbnail ? `<img src="${escapeHtml(a.thumbnail)}" alt=""/>` : ''}</td><td>${sectionLabel(a.section)}</td><td class="nw">${id(a.kind)}</td><td class="nw">${id(a.contentType)}</td><td class="nw">${id(`${a.byteSize} B`)}</td><td class="nw">${id(a.takenAt)}</td></tr>` +
            `<tr><td colspan="5"><code>SHA-256 ${id(a.sha256)}</code></td></tr>`,
        )
        .join('')}</table></section>`;

  const notLiability = form.fields.notLiability;
  const footer = `<div style="width:100%;font-size:7px;padding:0 11mm;display:flex;justify-content:space-between;font-family:'Noto Sans',sans-serif">
<span>${escapeHtml(notLiability[main] ?? notLiability.fr)}</span><span dir="ltr">${escapeHtml(input.constatId)} · <span class="pageNumber"></span>/<span class="totalPages"></span></span><span dir="rtl" style="font-family:'Noto Naskh Arabic',serif">${escapeHtml(notLiability[second] ?? notLiability.fr)}</span></div>`;
  const html = `<!doctype html>
<html lang="${main}"><head><meta charset="utf-8"><title>${escapeHtml(form.fields.title.fr)} ${escapeHtml(input.constatId)}</title>
<style>${STYLE}</style></head>
<body>
<header>
  <h1>${label('title')}</h1>
  <table class="meta">
    ${row('constatId', `<code class="cid">${id(input.constatId)}</code>`)}
    ${row('finalizedAt', id(input.finalizedAt.toISOString()))}
    ${row('formVersion', `${id(form.id)} — ${v(form.name)}`)}
  </table>
  ${form.note ? `<p class="note">${escapeHtml(form.note)}</p>` : ''}
</header>
<section class="accident"><h2>${label('accident')}</h2>
  <table class="two">
    <tr><td><table>${row('date', id(accident.date))}${row('time', id(accident.time))}${row('country', id(place.country))}${row('wilaya', id(place.wilaya))}${row('commune', v(place.commune))}</table></td>
    <td><table>${row('address', v(place.address))}${row('gps', gps)}${row('injuries', yesNo(accident.injuries))}${row('otherVehicleDamage', yesNo(accident.otherVehicleDamage))}${row('objectDamage', yesNo(accident.objectDamage))}</table></td></tr>
  </table>
  <h3>${label('witnesses')}</h3>
  ${
    witnesses.length === 0
      ? `<p>${v(undefined)}</p>`
      : `<ul class="witnesses">${witnesses.map((w: Witness) => `<li>${v(w.name)} · ${v(w.address)} · ${id(w.phone)}</li>`).join('')}</ul>`
  }
</section>
<div class="columns">${vehicleColumn('A')}${vehicleColumn('B')}</div>
<section class="circumstances"><h2>${label('circumstances')}</h2>
  <table class="boxes"><thead><tr><th class="tick">A</th><th></th><th></th><th></th><th class="tick">B</th></tr></thead>
  <tbody>${circumstanceRows}</tbody>
  <tfoot><tr><td class="tick">${count('A')}</td><td colspan="3" class="countlabel">${label('circumstanceCount')}</td><td class="tick">${count('B')}</td></tr></tfoot></table>
</section>
<section class="sketch-section"><h2>${label('sketch')}</h2>${sketchSvg(input.content.sketch.elements)}</section>
${attachmentSection}
<section class="signatures"><h2>${label('signatures')}</h2>
  <div class="sigs">${signatureBlock('A')}${signatureBlock('B')}</div>
  <div class="proof"><div class="qr">${input.qrSvg}</div>
    <div><div class="label-line">${label('contentHash')}</div><code class="long hash">${id(input.contentHash)}</code>
    <div class="label-line">${label('verify')}</div><code class="long">${id(input.verifyUrl)}</code>
    <p>${label('signedByBoth')}</p></div></div>
</section>
<footer>${label('notLiability')}</footer>
</body></html>`;
  return { html, footer };
}

type Labels = { fr: string; ar?: string; en?: string };

function one(labels: Labels, lang: Language): string {
  const text = labels[lang] ?? labels.fr;
  return `<span lang="${lang}"${RTL.has(lang) ? ' dir="rtl"' : ''}>${escapeHtml(text)}</span>`;
}

function bilingual(labels: Labels, main: Language, second: Language): string {
  return `<span class="lbl">${one(labels, main)}<span class="sep"> / </span>${one(labels, second)}</span>`;
}

/**
 * The first 16 bytes of the SHA-256 of the raw Ed25519 public key, as hex in groups of four:
 * short enough to read out, long enough that no other key matches it by chance.
 */
export function keyFingerprint(publicKeyBase64: string | undefined): string {
  if (!publicKeyBase64) return '—';
  const digest = createHash('sha256').update(Buffer.from(publicKeyBase64, 'base64')).digest('hex');
  return digest.slice(0, 32).match(/.{4}/g)!.join(' ');
}

const STYLE = `
@page { size: A4; margin: 12mm 11mm 16mm 11mm; }
* { box-sizing: border-box; }
body { font-family: 'Noto Sans', 'DejaVu Sans', sans-serif; font-size: 7.4pt; line-height: 1.25; color: #111; margin: 0; }
[lang="ar"], [dir="rtl"] { font-family: 'Noto Naskh Arabic', 'Amiri', serif; font-size: 1.05em; line-height: 1.15; }
h1 { font-size: 13pt; margin: 0 0 3px; text-align: center; }
h2 { font-size: 9pt; margin: 6px 0 3px; padding: 1px 4px; background: #eee; border-left: 4px solid #555; }
h3 { font-size: 7.6pt; margin: 3px 0 1px; color: #333; border-bottom: 1px solid rgba(0,0,0,.15); }
table { border-collapse: collapse; width: 100%; }
th { text-align: left; font-weight: normal; color: #555; width: 30%; vertical-align: top; padding: 0 3px 0 0; }
th.second { text-align: right; padding: 0 0 0 3px; }
td { vertical-align: top; padding: 0; overflow-wrap: anywhere; }
p { margin: 1px 0; }
.sep { color: #999; }
.empty { color: #aaa; }
.note { font-size: 7pt; color: #8a5a00; margin: 2px 0; text-align: center; }
.meta th { width: 25%; }
code { font-family: 'DejaVu Sans Mono', monospace; font-size: 7.4pt; }
.long { display: block; overflow-wrap: anywhere; word-break: break-all; }
.two > tbody > tr > td { width: 50%; padding-right: 8px; }
.columns { display: flex; gap: 8px; }
.vehicle { flex: 1; border: 2px solid; border-radius: 4px; padding: 4px 6px; break-inside: avoid; }
.vA { border-color: ${ROLE_COLOURS.A.stroke}; background: ${ROLE_COLOURS.A.fill}; }
.vB { border-color: ${ROLE_COLOURS.B.stroke}; background: ${ROLE_COLOURS.B.fill}; }
.vA h2 { background: ${ROLE_COLOURS.A.stroke}; color: #fff; border: 0; }
.vB h2 { background: ${ROLE_COLOURS.B.stroke}; color: #fff; border: 0; }
.plate { font-weight: bold; }
.impact-row { display: flex; gap: 6px; }
.impact { width: 15mm; height: 27mm; }
.grow { flex: 1; }
.circumstances { break-inside: avoid; }
.boxes td, .boxes th { border-bottom: 1px solid #ddd; padding: 1.5px 3px; }
.boxes .tick { width: 7mm; text-align: center; }
.boxes .num { width: 7mm; text-align: center; font-weight: bold; }
.boxes .cl { width: 43%; }
.box { display: inline-block; width: 11px; height: 11px; border: 1.5px solid; line-height: 9px; font-size: 9px; text-align: center; }
.bA { border-color: ${ROLE_COLOURS.A.stroke}; color: ${ROLE_COLOURS.A.stroke}; }
.bB { border-color: ${ROLE_COLOURS.B.stroke}; color: ${ROLE_COLOURS.B.stroke}; }
.box.on { font-weight: bold; }
.countlabel { text-align: center; font-weight: bold; }
.sketch-section { break-inside: avoid; }
.sketch { width: 100%; height: auto; max-height: 68mm; }
.attachments img { max-width: 22mm; max-height: 16mm; }
.attachments .thumb { width: 24mm; }
.nw { white-space: nowrap; padding: 0 4px; }
.grid td { border-bottom: 1px solid #ddd; padding: 2px; }
.signatures { break-inside: avoid; }
.sigs { display: flex; gap: 8px; }
.sig { flex: 1; border: 2px solid; border-radius: 4px; padding: 4px 6px; }
.proof { display: flex; gap: 10px; margin-top: 6px; align-items: flex-start; }
.qr svg { width: 30mm; height: 30mm; }
.label-line { color: #444; margin-top: 3px; }
footer { margin-top: 8px; border-top: 1px solid #999; padding-top: 4px; text-align: center; font-weight: bold; }
`;
