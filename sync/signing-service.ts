/**
 * Device keys and signatures. A device registers its Ed25519 public key; a driver signs the
 * canonical content hash of the server's own copy of the document (see docs/signing.md).
 */
import { createPublicKey, verify } from 'node:crypto';
import type { Logger } from 'pino';
import type { SessionService, DeviceIdentity } from './session-service.js';
import type { LiveSessions } from './live-sessions.js';
import type { LiveSession } from './live-session.js';
import { ConstatError } from '../constat/errors.js';
import { signingMessage } from '../constat/content-hash.js';
import { validateContent } from '../constat/validate-content.js';
import {
  readSignatures,
  type ConstatContent,
  type SignatureRecord,
} from '../constat/constat-doc.js';
import type { Role } from '../constat/permissions.js';
import type { SessionRecord } from '../constat/session-record.js';

export interface DeviceKeyStore {
  register(
    userId: string,
    deviceId: string,
    publicKey: Uint8Array,
  ): Promise<{
    replaced: { keyId: string; version: number } | null;
    device: { keyId: string; version: number; registeredAt: Date; updatedAt: Date };
  }>;
  get(userId: string, deviceId: string): Promise<{ publicKey: Uint8Array; keyId: string } | null>;
}

/** Checks the files the content names (media/attachment-service.ts); async, store-bound. */
export interface AttachmentChecker {
  signingErrors(
    sessionId: string,
    content: ConstatContent,
  ): Promise<Array<{ path: string; code: string; message: string }>>;
}

export interface SessionDocumentView {
  contentHash: string;
  signatures: Array<SignatureRecord & { role: Role }>;
  constatId: string | undefined;
}

const HASH = /^[0-9a-f]{64}$/;
const FINALIZE_WAIT_MS = 3_000;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

export class SigningService {
  constructor(
    private readonly sessions: SessionService,
    private readonly live: LiveSessions,
    private readonly keys: DeviceKeyStore,
    private readonly knownInsurers: () => ReadonlySet<string>,
    private readonly logger: Logger,
    private readonly attachments?: AttachmentChecker,
  ) {}

  async registerDevice(device: DeviceIdentity, publicKeyBase64: string) {
    const publicKey = decodeBase64(publicKeyBase64, 32, 'publicKey');
    ed25519Key(publicKey); // refuses bytes that are not a usable key
    const { replaced, device: stored } = await this.keys.register(
      device.userId,
      device.deviceId,
      publicKey,
    );
    // A replacement is worth an operator's attention: it is how a stolen account would swap
    // in its own key. Signatures already made keep the key id and key that verified them.
    if (replaced) {
      this.logger.warn(
        {
          userId: device.userId,
          deviceId: device.deviceId,
          oldKeyId: replaced.keyId,
          oldVersion: replaced.version,
          keyId: stored.keyId,
          version: stored.version,
        },
        'device key replaced',
      );
    }
    return {
      ...device,
      publicKey: publicKeyBase64,
      keyId: stored.keyId,
      keyVersion: stored.version,
      replacedKeyId: replaced?.keyId ?? null,
      registeredAt: stored.registeredAt,
      updatedAt: stored.updatedAt,
    };
  }

  async sign(
    device: DeviceIdentity,
    sessionId: string,
    contentHash: string,
    signatureBase64: string,
  ): Promise<{
    session: SessionRecord;
    constatId: string | undefined;
    document: SessionDocumentView;
  }> {
    const { session, role } = await this.sessions.authorizeDevice(sessionId, device);
    if (session.status !== 'active')
      throw new ConstatError('CONFLICT', 'party B has not joined yet');
    if (!HASH.test(contentHash)) {
      throw new ConstatError('BAD_USER_INPUT', 'contentHash must be 64 lowercase hex digits', {
        field: 'contentHash',
      });
    }
    const signature = decodeBase64(signatureBase64, 64, 'signature');
    const registered = await this.keys.get(device.userId, device.deviceId);
    if (!registered)
      throw new ConstatError('FORBIDDEN', 'this device has no registered key (registerDevice)');
    const key = ed25519Key(registered.publicKey);
    const document = await this.live.use(session, async (live) => {
      await live.sign({
        role,
        userId: device.userId,
        deviceId: device.deviceId,
        hash: contentHash,
        signature: signatureBase64,
        signingMessage: signingMessage(session.id, role, contentHash),
        publicKey: Buffer.from(registered.publicKey).toString('base64'),
        keyId: registered.keyId,
        verify: (message) => verify(null, Buffer.from(message, 'utf8'), key, signature),
        validate: async (content) => {
          const errors = validateContent(content, {
            formVersion: session.formVersion,
            knownInsurers: this.knownInsurers(),
          });
          // Files are checked only once the form itself is complete: reading them costs more.
          if (errors.length > 0 || !this.attachments) return errors;
          return this.attachments.signingErrors(session.id, content);
        },
      });
      // The second signature starts finalization; wait for it so the answer can already say
      // FINALIZED (devices are told through the websocket either way).
      await live.finalizationSettled(FINALIZE_WAIT_MS);
      // The answer is read here, while the document is loaded: asked afterwards, it could
      // have been unloaded already and would be loaded again just to answer.
      return documentView(live);
    });
    return { session, constatId: document.constatId, document };
  }

  /** The session document's content as the server holds it now. */
  async content(session: {
    id: string;
    formVersion: string;
    expiresAt: string;
  }): Promise<ConstatContent> {
    return this.live.use(session, async (live) => live.content());
  }

  /** The server's view of the session's document: hash, signatures, constat id. */
  async describe(session: {
    id: string;
    formVersion: string;
    expiresAt: string;
  }): Promise<SessionDocumentView> {
    return this.live.use(session, async (live) => documentView(live));
  }
}

function documentView(live: LiveSession): SessionDocumentView {
  const signatures = readSignatures(live.doc);
  return {
    contentHash: live.contentHash(),
    signatures: (['A', 'B'] as const).flatMap((role) =>
      signatures[role] ? [{ role, ...signatures[role] }] : [],
    ),
    constatId: live.constatId,
  };
}

function decodeBase64(value: string, length: number, field: string): Uint8Array {
  const bytes = BASE64.test(value)
    ? Buffer.from(value, value.includes('-') || value.includes('_') ? 'base64url' : 'base64')
    : undefined;
  if (!bytes || bytes.byteLength !== length) {
    throw new ConstatError('BAD_USER_INPUT', `${field} must be ${length} bytes, base64`, { field });
  }
  return new Uint8Array(bytes);
}

export function ed25519Key(raw: Uint8Array) {
  try {
    return createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') },
      format: 'jwk',
    });
  } catch {
    throw new ConstatError('BAD_USER_INPUT', 'publicKey is not an Ed25519 public key', {
      field: 'publicKey',
    });
  }
}
