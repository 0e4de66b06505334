/**
 * The public verification page, `GET /verify/{constatId}?h={hash}`: anyone holding a printed
 * report (or its QR code) can check it against the stored constat. `h` is the content hash
 * printed on the report, or the SHA-256 of a report file.
 *
 * It shows nothing personal — no names, plates or places — only whether the hash matches, when
 * the constat was finalized, whether each stored signature verifies (Ed25519 over the signing
 * message with the key that was registered) and the key fingerprints. An unknown id and a wrong
 * hash get the same answer, so the page cannot be used to learn which constat ids exist.
 */
import { verify } from 'node:crypto';
import type { StoredConstat } from '../persistence/constats-repository.js';
import type { StoredDocument } from '../persistence/documents-repository.js';
import { signingMessage } from '../constat/content-hash.js';
import { ed25519Key } from '../sync/signing-service.js';
import { escapeHtml } from './html.js';
import { keyFingerprint } from './report-template.js';

export const HASH_PATTERN = /^[0-9a-f]{64}$/;

export interface SignatureStatus {
  role: 'A' | 'B';
  signedAt: string | null;
  keyFingerprint: string | null;
  /** The signature verifies against the stored key and covers the stored content hash. */
  valid: boolean;
}

export type VerifyOutcome =
  | {
      match: true;
      /** What `h` matched: the content hash, or the file of one report version. */
      matched: 'content' | 'document';
      documentVersion: number | null;
      constatId: string;
      finalizedAt: string;
      formVersion: string;
      contentHash: string;
      signatures: SignatureStatus[];
      documents: Array<{ version: number; sha256: string; createdAt: string }>;
    }
  | { match: false };

type Json = Record<string, unknown>;
const asObject = (value: unknown): Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {};

function signatureStatus(constat: StoredConstat, role: 'A' | 'B'): SignatureStatus {
  const s = asObject(asObject(constat.signatures)[role]);
  const publicKey = typeof s.publicKey === 'string' ? s.publicKey : undefined;
  let valid = false;
  if (publicKey && typeof s.signature === 'string' && s.hash === constat.contentHash) {
    try {
      valid = verify(
        null,
        Buffer.from(signingMessage(constat.sessionId, role, constat.contentHash), 'utf8'),
        ed25519Key(new Uint8Array(Buffer.from(publicKey, 'base64'))),
        Buffer.from(s.signature, 'base64'),
      );
    } catch {
      valid = false;
    }
  }
  return {
    role,
    signedAt: typeof s.signedAt === 'string' ? s.signedAt : null,
    keyFingerprint: publicKey ? keyFingerprint(publicKey) : null,
    valid,
  };
}

/** `h` must already be 64 lowercase hex digits (the route refuses anything else). */
export function verifyConstat(
  constat: StoredConstat | null,
  documents: readonly StoredDocument[],
  h: string,
): VerifyOutcome {
  if (!constat) return { match: false };
  const document = documents.find((d) => d.sha256 === h);
  if (constat.contentHash !== h && !document) return { match: false };
  return {
    match: true,
    matched: document ? 'document' : 'content',
    documentVersion: document?.version ?? null,
    constatId: constat.id,
    finalizedAt: constat.finalizedAt.toISOString(),
    formVersion: constat.formVersion,
    contentHash: constat.contentHash,
    signatures: [signatureStatus(constat, 'A'), signatureStatus(constat, 'B')],
    documents: documents.map((d) => ({
      version: d.version,
      sha256: d.sha256,
      createdAt: d.createdAt.toISOString(),
    })),
  };
}

const PAGE_STYLE = `body{font-family:'Noto Sans',sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#111}
.ok{color:#0a6b2c}.bad{color:#a40000}code{word-break:break-all}td,th{padding:.2rem .5rem;text-align:left;vertical-align:top}
[lang=ar]{font-family:'Noto Naskh Arabic',serif}`;

export function verifyPageHtml(outcome: VerifyOutcome): string {
  const head = `<!doctype html><html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>Vérification du constat</title><style>${PAGE_STYLE}</style></head><body>`;
  if (!outcome.match) {
    return `${head}<h1 class="bad">Aucun constat ne correspond</h1>
<p>No finalized constat matches this id and hash. <span lang="ar" dir="rtl">لا يوجد محضر مطابق لهذا المعرف وهذه البصمة.</span></p>
<p>Vérifiez l'adresse ou le code QR imprimé sur le constat.</p></body></html>`;
  }
  const sig = (s: SignatureStatus) =>
    `<tr><th>${s.role}</th><td class="${s.valid ? 'ok' : 'bad'}">${s.valid ? 'signature valide / valid' : 'signature non valide / invalid'}</td><td>${escapeHtml(s.signedAt ?? '—')}</td><td><code>${escapeHtml(s.keyFingerprint ?? '—')}</code></td></tr>`;
  const allValid = outcome.signatures.every((s) => s.valid);
  return `${head}<h1 class="ok">Constat authentique — empreinte conforme</h1>
<p>The hash matches the stored constat${outcome.matched === 'document' ? ` (report file, version ${outcome.documentVersion})` : ' (signed content)'}. <span lang="ar" dir="rtl">البصمة مطابقة للمحضر المحفوظ.</span></p>
<table>
<tr><th>Constat</th><td><code>${escapeHtml(outcome.constatId)}</code></td></tr>
<tr><th>Finalisé le / finalized</th><td>${escapeHtml(outcome.finalizedAt)}</td></tr>
<tr><th>Formulaire / form</th><td>${escapeHtml(outcome.formVersion)}</td></tr>
<tr><th>SHA-256</th><td><code>${escapeHtml(outcome.contentHash)}</code></td></tr>
</table>
<h2 class="${allValid ? 'ok' : 'bad'}">Signatures ${allValid ? 'valides' : 'à vérifier'}</h2>
<table><tr><th></th><th>statut</th><th>signé le</th><th>empreinte de la clé</th></tr>${outcome.signatures.map(sig).join('')}</table>
<h2>Versions du document</h2>
<table>${outcome.documents.map((d) => `<tr><th>v${d.version}</th><td><code>${escapeHtml(d.sha256)}</code></td><td>${escapeHtml(d.createdAt)}</td></tr>`).join('') || '<tr><td>—</td></tr>'}</table>
</body></html>`;
}
