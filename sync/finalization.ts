/**
 * The signing and finalization state machine of one live document: the decision half of
 * finalization (the other halves, the event and the transaction, are behind the `Finalizer`
 * port: finalization/finalizer.ts).
 *
 * Everything is derived from the document, the same way on every instance (`review`, queued
 * after every change): the constat id appearing ends editing; a signature over a hash that is
 * no longer the content's voids every signature; two signatures over the current hash start
 * finalization, on one instance: the one that wrote the later signature. `sign` accepts a
 * driver's signature into the document.
 *
 *   editing ──sign A / sign B──▶ signed (one or both) ──both over the current hash──▶ finalizing
 *      ▲                              │ content changed                                 │ finalizer
 *      └──────── signatures voided ◀──┘                           finalized (constatId) ◀┘
 *   editing ── meta.ended ──▶ ended (abandoned, expired)
 */
import * as Y from 'yjs';
import type { Logger } from 'pino';
import { ConstatError } from '../constat/errors.js';
import {
  clearSignatures,
  readConstatId,
  readEnded,
  readSignatures,
  writeConstatId,
  writeSignature,
  type ConstatContent,
  type SignatureRecord,
} from '../constat/constat-doc.js';
import type { Role } from '../constat/permissions.js';
import type { ContentCache } from './content-cache.js';
import { SERVER_ORIGIN } from './origins.js';
import type { SessionEvent } from './protocol.js';
import type { Finalizer } from './ports.js';

/** What the state machine needs of its live document. */
export interface FinalizationHost {
  readonly sessionId: string;
  readonly formVersion: string;
  /** The document, woken up if it was asleep. */
  readonly doc: Y.Doc;
  readonly destroyed: boolean;
  /** The content as it would be signed now. */
  content(): ContentCache;
  /** The document's whole state, encoded (merged off the event loop). */
  state(): Promise<Uint8Array>;
  broadcastEvent(event: SessionEvent, changed?: boolean): void;
  /** Closes every device of the session for this reason. */
  endAll(reason: ConstatError): void;
  /** Runs a background step, logging and counting a throw instead of crashing. */
  guard(task: string, step: () => void): void;
  /** A timer cleared when the document is destroyed. */
  timer(ms: number, fn: () => void): void;
  logger(): Logger;
}

export interface FinalizationOptions {
  finalizer: Finalizer;
  /**
   * How long an instance that saw both signatures arrive from elsewhere waits for the constat
   * id before finalizing itself (the instance that should have may have died). 0: no other
   * instance serves the session, finalize at once.
   */
  takeoverMs: number;
}

export interface SignInput {
  role: Role;
  userId: string;
  deviceId: string;
  hash: string;
  signature: string;
  validate: (
    content: ConstatContent,
  ) =>
    | Array<{ path: string; code: string; message: string }>
    | Promise<Array<{ path: string; code: string; message: string }>>;
  verify: (message: string) => boolean;
  signingMessage: string;
  /** The key that verified the signature (base64), kept with it: keys can be replaced later. */
  publicKey: string;
  /** Its key id (RFC 7638 thumbprint), under which the key stays registered. */
  keyId: string;
}

const FINALIZE_RETRY_MS = { first: 250, max: 10_000 };
// How long a signature's hash may wait for edits still in flight to reach this copy.
const SIGN_CATCH_UP_MS = 2_000;

export class Finalization {
  /** Set once the document names its constat: read-only from then on. */
  #constatId: string | undefined;
  #ended: string | undefined;
  #reviewQueued = false;
  /** The first review of a loaded document has run (see review). */
  #reviewed = false;
  #announced = new Map<Role, string>();
  #finalizing = false;
  /** When this instance wrote each party's signature (`signedAt`): who finalizes. */
  readonly #signedHere = new Map<Role, string>();
  #takeoverArmed = false;
  /** Settles when the finalization under way stops (committed, refused or shut down). */
  #finalization: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: FinalizationHost,
    private readonly opts: FinalizationOptions,
  ) {}

  get constatId(): string | undefined {
    return this.#constatId;
  }

  get ended(): string | undefined {
    return this.#ended;
  }

  /** A finalization is under way (or about to start: a review is queued). */
  get finalizing(): boolean {
    return this.#finalizing || this.#reviewQueued;
  }

  /** Throws when the document takes no more edits. */
  assertWritable(): void {
    if (this.#constatId) {
      throw new ConstatError('GONE', 'the constat is finalized and can no longer change', {
        constatId: this.#constatId,
      });
    }
    if (this.#ended) throw new ConstatError('NOT_FOUND', `session is ${this.#ended}`);
  }

  /**
   * Accepts a driver's signature: the hash must be the server's own hash of its copy (given a
   * moment to catch up with edits still in flight), the content complete, the signature valid.
   */
  async sign(input: SignInput): Promise<void> {
    const host = this.host;
    this.assertWritable();
    let current = host.content().get().hash;
    for (
      const deadline = Date.now() + SIGN_CATCH_UP_MS;
      current !== input.hash && Date.now() < deadline;
    ) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      if (host.destroyed) throw new ConstatError('UNAVAILABLE', 'session is shutting down');
      current = host.content().get().hash;
    }
    if (current !== input.hash) {
      throw new ConstatError('CONFLICT', 'the content changed: sign the current content hash', {
        currentHash: current,
      });
    }
    const fieldErrors = await input.validate(host.content().get().content);
    if (fieldErrors.length > 0) {
      throw new ConstatError('BAD_USER_INPUT', 'the constat is not complete', { fieldErrors });
    }
    // Validation may have waited on the media store: what it judged must still be the content.
    this.assertWritable();
    if (host.content().get().hash !== input.hash) {
      throw new ConstatError('CONFLICT', 'the content changed: sign the current content hash', {
        currentHash: host.content().get().hash,
      });
    }
    if (!input.verify(input.signingMessage)) {
      throw new ConstatError('FORBIDDEN', 'the signature does not verify with the device key');
    }
    this.assertWritable();
    const record: SignatureRecord = {
      hash: input.hash,
      signature: input.signature,
      deviceId: input.deviceId,
      userId: input.userId,
      publicKey: input.publicKey,
      keyId: input.keyId,
      signedAt: new Date().toISOString(),
    };
    writeSignature(host.doc, input.role, record, SERVER_ORIGIN);
    this.#signedHere.set(input.role, record.signedAt);
  }

  /**
   * Resolves once a finalization started by the latest change has ended, or after `timeoutMs`:
   * a signing request can then answer with the constat id.
   */
  async settled(timeoutMs: number): Promise<void> {
    await null; // a review queued by the caller's change runs first
    if (!this.#finalizing) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#finalization,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  /** Reviews the document once the current change (transaction, task) is over. */
  queueReview(): void {
    if (this.#reviewQueued || this.host.destroyed) return;
    this.#reviewQueued = true;
    queueMicrotask(() => {
      this.#reviewQueued = false;
      if (!this.host.destroyed) this.host.guard('review', () => this.#review());
    });
  }

  /** Derives what follows from the document's state (see the top of this file). */
  #review(): void {
    const { doc } = this.host;
    // The first review of a loaded document learns what the document already says (signed,
    // finalized): that is no change. Announcing it would make every reader that loads the
    // document raise a change, and a subscription whose answer reads the signatures would
    // load it again for that change, and again, forever. Voiding is a change and is announced.
    const restated = !this.#reviewed;
    this.#reviewed = true;
    const constatId = readConstatId(doc);
    if (constatId && !this.#constatId) {
      this.#constatId = constatId;
      this.host.broadcastEvent({ type: 'finalized', constatId }, !restated);
      this.host.endAll(new ConstatError('GONE', 'the constat is finalized', { constatId }));
      return;
    }
    if (this.#constatId) return;
    const ended = readEnded(doc);
    if (ended && !this.#ended) {
      this.#ended = ended;
      this.host.endAll(new ConstatError('NOT_FOUND', `session is ${ended}`));
      return;
    }
    const signatures = readSignatures(doc);
    const roles = (['A', 'B'] as const).filter((r) => signatures[r]);
    if (roles.length === 0) {
      this.#announced.clear();
      return;
    }
    const hash = this.host.content().get().hash;
    if (roles.some((r) => signatures[r]!.hash !== hash)) {
      clearSignatures(doc, roles, SERVER_ORIGIN);
      this.#announced.clear();
      this.host.broadcastEvent({
        type: 'signatures-voided',
        reason: 'the content changed after signing',
      });
      return;
    }
    for (const r of roles) {
      if (this.#announced.get(r) !== hash) {
        this.#announced.set(r, hash);
        this.host.broadcastEvent({ type: 'signed', role: r, hash }, !restated);
      }
    }
    if (signatures.A && signatures.B) {
      // One instance finalizes: the one that wrote the later signature (B's on a tie), which
      // every instance can tell from the document alone, however the two arrived. The others
      // take over only if no constat id reached them in time (that instance died, say); the
      // transaction is exactly-once either way, this only saves the duplicate work.
      const last = signatures.A.signedAt > signatures.B.signedAt ? 'A' : 'B';
      const mine = this.#signedHere.get(last) === signatures[last]!.signedAt;
      if (mine || this.opts.takeoverMs === 0) this.#finalize();
      else this.#finalizeLater();
    }
  }

  #finalizeLater(): void {
    if (this.#takeoverArmed) return;
    this.#takeoverArmed = true;
    this.host.timer(this.opts.takeoverMs, () => {
      this.#takeoverArmed = false;
      if (!this.#constatId && !this.host.destroyed)
        this.host.guard('finalize-takeover', () => this.#finalize());
    });
  }

  /** Runs finalization until it succeeds, retrying with backoff while storage is unavailable. */
  #finalize(): void {
    if (this.#finalizing) return;
    this.#finalizing = true;
    const host = this.host;
    this.#finalization = (async () => {
      let delay = FINALIZE_RETRY_MS.first;
      try {
        while (!host.destroyed && !this.#constatId) {
          const signatures = readSignatures(host.doc);
          const { content, canonical, hash } = host.content().get();
          if (
            !signatures.A ||
            !signatures.B ||
            signatures.A.hash !== hash ||
            signatures.B.hash !== hash
          )
            return;
          try {
            // The log is in step with the document: this is the state the content came from
            // (taken now, merged off the event loop).
            const snapshot = await host.state();
            const outcome = await this.opts.finalizer.finalize({
              sessionId: host.sessionId,
              formVersion: host.formVersion,
              snapshot,
              content,
              canonicalJson: canonical,
              contentHash: hash,
              signatures: { A: signatures.A, B: signatures.B },
            });
            if (outcome.kind === 'not-signable') {
              host.logger().warn({ reason: outcome.reason }, 'signed session cannot be finalized');
              return;
            }
            if (host.destroyed) return;
            host
              .logger()
              .info({ constatId: outcome.constatId, outcome: outcome.kind }, 'constat finalized');
            writeConstatId(host.doc, outcome.constatId, SERVER_ORIGIN);
            return;
          } catch (err) {
            host.logger().error({ err, retryInMs: delay }, 'finalization failed; retrying');
            await new Promise<void>((resolve) => host.timer(delay, resolve));
            delay = Math.min(delay * 2, FINALIZE_RETRY_MS.max);
          }
        }
      } finally {
        this.#finalizing = false;
      }
    })().catch((err: unknown) => host.logger().error({ err }, 'finalization stopped'));
  }
}
