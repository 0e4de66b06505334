/**
 * The update gate: what happens to one update a device sent, before any other device sees it.
 *
 * 1. Inspect it against the live document (update-inspector.ts): malformed, forbidden, too
 *    deep, or referencing edits this instance has not read yet. With a shared hub such an
 *    update is re-inspected a few times while the hub catches up, then refused as transient.
 * 2. Cap the document's size (an estimate kept by the document log, measured exactly off the
 *    event loop when the estimate says no).
 * 3. Record the new Yjs client ids as owned by the sender (a server transaction on
 *    `meta.clients`).
 * 4. Append to the hub (durable there: acknowledged), then apply with the channel as origin,
 *    which fans it out to the other devices here (live-session.ts).
 *
 * A refusal tells the device why (`rejected-update`) and throws the ConstatError its
 * connection is closed with.
 */
import * as Y from 'yjs';
import type { Logger } from 'pino';
import { ConstatError } from '../constat/errors.js';
import { ownerOf, recordOwners } from '../constat/client-owners.js';
import { inspectUpdate } from './update-inspector.js';
import { SERVER_ORIGIN } from './origins.js';
import { ProtocolError, type SessionEvent } from './protocol.js';
import type { DocumentLog } from './document-log.js';
import type { Hub } from './hub.js';
import type { PresenceGate } from './presence-gate.js';
import type { DeviceChannel, RejectReason, SyncObserver } from './ports.js';

/** What the gate needs of the live document it guards. */
export interface GateHost {
  readonly sessionId: string;
  /** The document, woken up if it was asleep. */
  readonly doc: Y.Doc;
  /** The document's state as encoded updates (its size). */
  readonly log: DocumentLog;
  readonly presence: PresenceGate;
  /** Throws when the document takes no more edits (finalized, ended). */
  assertWritable(): void;
  /** Throws when the live document is shutting down. */
  assertAlive(): void;
  sendEvent(channel: DeviceChannel, event: SessionEvent): void;
  logger(): Logger;
}

export interface UpdateGateOptions {
  hub: Hub;
  observer: SyncObserver;
  maxDocumentBytes: number;
  /** Pauses before re-inspecting an update that references edits not read yet (none: refuse). */
  catchUpDelaysMs: readonly number[];
}

// An update may reference edits of another instance that have not reached this one yet:
// wait this long, in steps, before refusing it as transient (a shared hub only).
export const CATCH_UP_DELAYS_MS = [10, 20, 50, 100, 200, 400];
// Near the size limit, the estimate is measured exactly (off the event loop) only if this
// much was recorded since the last measure; below it the estimate decides.
const REMEASURE_MIN_BYTES = 4 * 1024;

export class UpdateGate {
  constructor(
    private readonly host: GateHost,
    private readonly opts: UpdateGateOptions,
  ) {}

  /** Resolves once `update` is appended and applied; throws a ConstatError for a refusal. */
  async admit(channel: DeviceChannel, update: Uint8Array): Promise<void> {
    const host = this.host;
    host.assertWritable();
    // No structs, no deletions: what a device in sync answers to our sync step 1. Nothing to
    // check or apply (and no reason to wake a sleeping document).
    if (update.byteLength === 2 && update[0] === 0 && update[1] === 0) return;
    const inspect = () =>
      inspectUpdate(
        host.doc,
        update,
        channel.role,
        (client) => ownerOf(host.doc, client),
        (client) => host.presence.announcedBy(client),
      );
    let verdict = inspect();
    for (const delay of this.opts.catchUpDelaysMs) {
      if (verdict.kind !== 'retry') break;
      await new Promise((resolve) => setTimeout(resolve, delay));
      host.assertWritable();
      host.assertAlive();
      verdict = inspect();
    }
    switch (verdict.kind) {
      case 'malformed':
        this.opts.observer.updateRejected('malformed');
        throw new ProtocolError(verdict.reason);
      case 'forbidden':
        this.#refuse(channel, 'forbidden', 'FORBIDDEN', verdict.reason);
      case 'too-deep':
        this.#refuse(channel, 'too-deep', 'TOO_LARGE', verdict.reason);
      case 'retry':
        this.#refuse(channel, 'retry', 'UNAVAILABLE', verdict.reason);
      case 'ok':
        break;
    }
    if (!verdict.changes) return; // nothing new (a duplicate, or an empty step 2)
    const max = this.opts.maxDocumentBytes;
    if (host.log.bytes + update.byteLength > max) {
      // The estimate says no; measure exactly (off the event loop) unless it just was.
      if (host.log.bytesSinceMerge >= REMEASURE_MIN_BYTES) {
        await host.log.state();
        host.assertWritable();
        host.assertAlive();
      }
      if (host.log.bytes + update.byteLength > max) {
        this.#refuse(channel, 'too-large', 'TOO_LARGE', `document would exceed ${max} bytes`);
      }
    }
    if (verdict.newClients.length > 0) {
      recordOwners(host.doc, verdict.newClients, channel.role, SERVER_ORIGIN);
    }
    await this.opts.hub.append(host.sessionId, { kind: 'update', update });
    host.assertAlive();
    Y.applyUpdate(host.doc, update, channel);
    this.#dropPending();
    this.opts.observer.updateAccepted(update.byteLength);
  }

  /**
   * The inspector accepts only updates that integrate completely, so this never finds
   * anything; if it ever does (a gap in the inspector), what Yjs parked is dropped rather than
   * kept to be applied over whatever arrives under those clocks later, and the gap is counted.
   */
  #dropPending(): void {
    const store = this.host.doc.store;
    if (!store.pendingStructs && !store.pendingDs) return;
    store.pendingStructs = null;
    store.pendingDs = null;
    this.opts.observer.pendingDropped();
    this.host.logger().error('an accepted update left content pending; it was dropped');
  }

  #refuse(
    channel: DeviceChannel,
    metric: Exclude<RejectReason, 'malformed'>,
    code: 'FORBIDDEN' | 'UNAVAILABLE' | 'TOO_LARGE',
    reason: string,
  ): never {
    this.opts.observer.updateRejected(metric);
    this.host.logger().info({ role: channel.role, reason }, 'update refused');
    this.host.sendEvent(channel, { type: 'rejected-update', reason, code });
    throw new ConstatError(code, reason);
  }
}
