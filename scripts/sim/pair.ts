/**
 * One simulated pair of phones, start to finish: A opens a session, B joins with the code,
 * both register their signing keys, connect stock y-websocket clients and fill the form at the
 * same time (typing, sketch strokes, circumstance boxes), wait until their copies agree with
 * the server's, sign, and wait for `finalized`; optionally the constat is looked for on the
 * insurers' Kafka topics.
 *
 * `offline`: one of the two phones loses its connection part way through, goes on editing,
 * and comes back; its edits merge. `tamper`: extra connections of each party write where they
 * may not, and forged signatures are sent; each must be refused, and one that is accepted
 * fails the pair.
 */
import * as Y from 'yjs';
import { createHash, randomBytes } from 'node:crypto';
import { contentHash } from '../../constat/content-hash.js';
import { connectDevice, sleep, waitFor, TimeoutError, type Device } from '../../client/device.js';
import { writeSection } from '../../client/writer.js';
import {
  errorCode,
  gql,
  mintToken,
  openAndJoin,
  SIGN_CONSTAT,
  GraphQLCallError,
  type OpenedPair,
  type Role,
} from '../../client/graphql.js';
import { newDeviceKey, signHash, type DeviceKey } from '../../client/keys.js';
import {
  finalizeFlow,
  registerKey,
  sessionView,
  StepError,
  waitForServerHash,
  type FlowParties,
} from '../../client/flow.js';
import { pairScript, runAction, updatesOf, type FillAction } from './content.js';
import type { KafkaWatch } from './kafka-watch.js';
import type { Random } from './random.js';
import { attachFile } from './attach.js';
import { makePhoto } from './photo.js';

const PHOTO_KINDS = [
  'damage',
  'scene',
  'licence',
  'registration',
  'insurance_certificate',
] as const;

export interface PairOptions {
  index: number;
  rng: Random;
  /** HTTP base URLs: A opens and connects on `a`, B joins and connects on `b`. */
  urls: { a: string; b: string };
  secret: string;
  insurers: readonly string[];
  offline: boolean;
  tamper: boolean;
  /** Fill the form as a fraud ring would (`--fraud-rate`; sim/content.ts). */
  suspicious?: boolean;
  /** Updates per second each phone sends while filling (typing speed). */
  updatesPerSecond: number;
  kafka: KafkaWatch | undefined;
  /** Fan-out of the pair's edits is tallied here (fanoutTally()). */
  fanout: FanoutTally;
  /** Photos each party attaches after filling (generated JPEGs of `byteSize` bytes). */
  photos?: { perParty: number; minBytes: number; maxBytes: number };
  /** Narration for --verbose (one line per step). */
  say?: (line: string) => void;
  /** Keep each phone's document as it ends (`PairResult.phones`), for the soak's checks. */
  keepDocuments?: boolean;
}

export interface TamperAttempt {
  kind: string;
  expected: string;
  /** What the server answered: a GraphQL code, a close code, or 'accepted'. */
  outcome: string;
}

export interface PairResult {
  index: number;
  sessionId?: string;
  constatId?: string;
  /** Filled as a fraud ring would. */
  suspicious: boolean;
  failure?: { step: string; reason: string };
  /** ms from `open` until both phones were told `finalized`. */
  sessionMs?: number;
  /** ms from the first signature sent until both phones were told `finalized`. */
  finalizeMs?: number;
  /** ms from `finalized` until the event was read from every insurer topic. */
  kafkaMs?: number;
  updates: number;
  offline: { dropped: number; reconnected: number };
  /** Connections closed with 1013 (retry) that the stock client recovered from. */
  transientCloses: number;
  tamper: TamperAttempt[];
  /** Files attached: bytes sent and ms per upload (the PUT only). */
  uploads: Array<{ bytes: number; ms: number }>;
  /**
   * With `keepDocuments`, once both phones were told `finalized`: each phone's Yjs client id and whole document (an
   * update), so a check can tell whether everything the phone wrote is in the constat.
   */
  phones?: Record<Role, { clientId: number; state: Uint8Array }>;
}

const FINALIZED_CLOSE = 4409;

export async function runPair(opts: PairOptions): Promise<PairResult> {
  const { rng } = opts;
  const say = opts.say ?? (() => {});
  const tag = `${opts.index}-${randomBytes(3).toString('hex')}`;
  const result: PairResult = {
    index: opts.index,
    suspicious: opts.suspicious === true,
    updates: 0,
    offline: { dropped: 0, reconnected: 0 },
    transientCloses: 0,
    tamper: [],
    uploads: [],
  };
  const devices: Device[] = [];
  const started = performance.now();
  let step = 'open';
  try {
    // 1. Open and join.
    say(`A asks the server to open a session (GraphQL openSession) on ${opts.urls.a}`);
    let pair: OpenedPair;
    try {
      pair = await openAndJoin(opts.urls, opts.secret, tag);
    } catch (err) {
      step = (err as Error).message.startsWith('joinSession') ? 'join' : 'open';
      throw err;
    }
    result.sessionId = pair.sessionId;
    say(`the server answers with session ${pair.sessionId} and join code ${pair.joinCode}`);
    say(`B scans the code and joins (GraphQL joinSession) on ${opts.urls.b}: B is party B`);

    // 2. Signing keys, as the app registers them once per phone.
    step = 'register keys';
    const tokens: Record<Role, string> = { A: pair.tokenA, B: pair.tokenB };
    const [keyA, keyB] = await Promise.all(
      (['A', 'B'] as const).map((role) =>
        registerKey(opts.urls[role === 'A' ? 'a' : 'b'], tokens[role]),
      ),
    );
    const keys: Record<Role, DeviceKey> = { A: keyA!, B: keyB! };
    say('each phone registers its Ed25519 public key (GraphQL registerDevice)');

    // 3. Connect both phones.
    step = 'connect';
    const a = connectDevice(pair.syncBaseA, pair.sessionId, pair.tokenA);
    const b = connectDevice(pair.syncBaseB, pair.sessionId, pair.tokenB);
    devices.push(a, b);
    const phones: Record<Role, Device> = { A: a, B: b };
    await Promise.all([a.synced(), b.synced()]);
    say(
      `both phones connect a stock y-websocket client to ${pair.syncBaseA}/${pair.sessionId}` +
        `${pair.syncBaseA === pair.syncBaseB ? '' : ` (B through ${pair.syncBaseB})`} and sync the empty form`,
    );
    say(
      '(the server checks every update before applying it: A may write the accident, the sketch' +
        ' and vehicle A; B the accident, the sketch and vehicle B; nobody meta or signatures)',
    );
    trackFanout(a, b, opts.fanout);
    trackFanout(b, a, opts.fanout);

    // 4-8. Fill, agree with the server's copy, sign both at once, wait for `finalized`
    // (client/flow.ts), with the simulator's own filling and checks as hooks.
    const parties: FlowParties = {
      sessionId: pair.sessionId,
      A: { url: opts.urls.a, token: pair.tokenA, phone: a },
      B: { url: opts.urls.b, token: pair.tokenB, phone: b },
    };
    const script = pairScript(rng.fork('content'), opts.insurers, {
      suspicious: opts.suspicious === true,
    });
    const fillForm = async () => {
      // 4. Fill, both at once.
      step = 'fill';
      say(
        `they fill the form at the same time: A the accident and vehicle A (insurer ${script.insurers.A}),` +
          ` B vehicle B (insurer ${script.insurers.B}) and the witnesses; both draw on the sketch`,
      );
      const offlineRole: Role | undefined = opts.offline
        ? rng.pick(['A', 'B'] as const)
        : undefined;
      const tamperAt = opts.tamper ? rng.int(1, Math.max(1, script.A.length - 2)) : -1;
      const tampering: Array<Promise<void>> = [];
      const fill = async (role: Role, actions: FillAction[]) => {
        const device = phones[role];
        const fillRng = rng.fork(`pace-${role}`);
        const dropAt = role === offlineRole ? fillRng.int(2, Math.max(2, actions.length - 4)) : -1;
        const backAt = dropAt < 0 ? -1 : dropAt + fillRng.int(2, 4);
        let offline = false;
        const pause = async (updates: number) => {
          result.updates += updates;
          assertOpen(device, role);
          const ms = (updates * 1000) / opts.updatesPerSecond;
          await sleep(ms * fillRng.float(0.6, 1.4));
        };
        for (let i = 0; i < actions.length; i++) {
          const action = actions[i]!;
          if (i === dropAt) {
            device.disconnect();
            offline = true;
            result.offline.dropped++;
            say(`${role}'s phone loses its connection and keeps editing offline`);
          }
          if (i === backAt && offline) {
            device.reconnect();
            offline = false;
            result.offline.reconnected++;
            say(`${role}'s phone is back online: its offline edits merge with the other's`);
          }
          if (role === 'A' && i === tamperAt) {
            say('meanwhile, tampered apps try to write where their party may not:');
            tampering.push(forbiddenWrites(pair, opts, result.tamper, say));
          }
          if (opts.say) say(`  ${role}: ${describe(action)}`);
          await runAction(device.doc, action, pause);
        }
        if (offline) {
          device.reconnect();
          result.offline.reconnected++;
          say(`${role}'s phone is back online: its offline edits merge with the other's`);
        }
      };
      await Promise.all([fill('A', script.A), fill('B', script.B)]);
      await Promise.all(tampering);

      // 4b. Photos: each phone uploads its own and records them in its section.
      if (opts.photos && opts.photos.perParty > 0) {
        step = 'attach';
        const photos = opts.photos;
        say(
          `each phone attaches ${photos.perParty} photo(s): a slot (GraphQL requestUpload), the bytes` +
            ' sent to the slot URL, the entry written into its own section (id, kind, type, size, SHA-256)',
        );
        await Promise.all(
          (['A', 'B'] as const).map(async (role) => {
            const photoRng = rng.fork(`photos-${role}`);
            for (let i = 0; i < photos.perParty; i++) {
              const kind = i === 0 ? 'damage' : photoRng.pick(PHOTO_KINDS);
              const section =
                kind === 'scene' ? 'accident' : role === 'A' ? 'vehicleA' : 'vehicleB';
              const photo = makePhoto({
                byteSize: photoRng.int(photos.minBytes, photos.maxBytes),
                takenAt: new Date(),
                gps: {
                  lat: 36.75 + photoRng.float(-0.05, 0.05),
                  lon: 3.05 + photoRng.float(-0.05, 0.05),
                },
              });
              const entry = await attachFile(
                opts.urls[role === 'A' ? 'a' : 'b'],
                tokens[role],
                pair.sessionId,
                phones[role].doc,
                section,
                { kind, ...photo, takenAt: new Date().toISOString() },
              );
              result.uploads.push({ bytes: photo.bytes.byteLength, ms: entry.uploadMs });
              say(
                `  ${role}: ${kind} photo, ${(photo.bytes.byteLength / 1e6).toFixed(2)} MB, uploaded in ` +
                  `${Math.round(entry.uploadMs)} ms → ${section}.attachments.${entry.id.slice(0, 8)}… ` +
                  `(sha256 ${photo.sha256.slice(0, 12)}…)`,
              );
            }
          }),
        );
        say(
          '(the server checks each file before a signature counts: size, SHA-256, type by its first bytes)',
        );
      }

      // 5. Both phones are connected again (the flow then waits until their copies agree).
      step = 'converge';
      await Promise.all(
        (['A', 'B'] as const).map((role) =>
          phones[role].synced(30_000).catch(() => {
            const d = phones[role];
            throw new StepError(
              'converge',
              `${role} never synced again (connected: ${d.provider.wsconnected}, ws: ${(d.provider.ws as { readyState?: number } | null)?.readyState ?? 'null'}, should: ${d.provider.shouldConnect}, closes: ${d.closes.map((c) => c.code).join(',') || 'none'}, events: ${d.events.map((e) => e.type + ('reason' in e ? `(${e.reason})` : '')).join(',')})`,
            );
          }),
        ),
      );
    };
    const beforeSigning = async () => {
      const hash = contentHash(a.doc);
      say(`both copies now hash to ${hash.slice(0, 16)}… (SHA-256 of the canonical JSON)`);
      step = 'server copy';
      await waitForServerHash(opts.urls.a, pair.tokenA, pair.sessionId, hash);
      say('the server reports the same content hash for its own copy');
      // 6. Forged signatures, each of which must be refused.
      if (opts.tamper) {
        // No forbidden write may have reached the honest phones.
        for (const [role, d] of Object.entries(phones)) {
          const json = JSON.stringify(d.doc.toJSON());
          if (json.includes('Modifié par B') || d.doc.getMap('signatures').size > 0) {
            result.tamper.push({
              kind: `a forbidden write reached ${role}`,
              expected: 'none',
              outcome: 'accepted',
            });
          }
        }
        step = 'tamper';
        say('tampered apps now send forged signatures:');
        await forgedSignatures(pair, opts, keys, hash, result.tamper, say);
        const view = await sessionView(opts.urls.a, pair.tokenA, pair.sessionId);
        if (view && view.signatures.length > 0) {
          result.tamper.push({
            kind: 'signature left behind',
            expected: 'none',
            outcome: 'accepted',
          });
        }
      }
      const accepted = result.tamper.filter((t) => t.outcome === 'accepted');
      if (accepted.length > 0) {
        throw new StepError('tamper', `accepted: ${accepted.map((t) => t.kind).join(', ')}`);
      }
      const unexpected = result.tamper.filter((t) => t.outcome !== t.expected);
      if (unexpected.length > 0) {
        const t = unexpected[0]!;
        throw new StepError(
          'tamper',
          `${t.kind}: refused with ${t.outcome}, expected ${t.expected}`,
        );
      }
    };
    const flow = await finalizeFlow(
      parties,
      {
        fill: fillForm,
        beforeSigning,
        check: () => (assertOpen(a, 'A'), assertOpen(b, 'B')),
        onStep: (name) => {
          step = name;
          if (name !== 'sign') return;
          say('each driver signs the hash with the phone key (GraphQL signConstat)');
          say(
            '(the server checks each signature against its own copy; once both cover the same hash it' +
              ' finalizes: one transaction stores the snapshot, canonical JSON, hash, signatures and an' +
              ' outbox row per insurer topic)',
          );
        },
      },
      { keys, concurrentSignatures: true },
    );
    const { constatId, finalizedAt } = flow;
    result.constatId = constatId;
    result.finalizeMs = finalizedAt - flow.signStartedAt;
    result.sessionMs = finalizedAt - started;
    say(`both phones are told: finalized, constat ${constatId}; the document is now read-only`);

    // 9. On Kafka.
    if (opts.kafka) {
      step = 'kafka';
      const topics = [...new Set([script.insurers.A, script.insurers.B])];
      const missing = await opts.kafka.waitFor(constatId, topics, 60_000);
      if (missing.length > 0) {
        throw new StepError('kafka', `not seen on topic ${missing.join(', ')}`);
      }
      result.kafkaMs =
        Math.max(...topics.map((t) => opts.kafka!.seenAt(constatId, t)!)) - finalizedAt;
      say(
        `the event dz.constat.finalized.v1 for ${constatId} is on Kafka topic ${topics.join(' and ')}`,
      );
    }
    result.transientCloses = devices.reduce(
      (n, d) => n + d.closes.filter((c) => c.code === 1013).length,
      0,
    );
    return result;
  } catch (err) {
    result.failure = classify(step, err);
    return result;
  } finally {
    const [a, b] = devices;
    if (opts.keepDocuments && result.constatId && a && b) {
      const kept = (d: Device) => ({
        clientId: d.doc.clientID,
        state: Y.encodeStateAsUpdate(d.doc),
      });
      result.phones = { A: kept(a), B: kept(b) };
    }
    for (const d of devices) d.destroy();
  }
}

function classify(step: string, err: unknown): { step: string; reason: string } {
  if (err instanceof StepError) return { step: err.step, reason: err.message };
  if (err instanceof GraphQLCallError) return { step, reason: err.code ?? err.message };
  if (err instanceof TimeoutError)
    return { step, reason: err.message.replace(/^timed out after \d+ ms: /, 'timed out: ') };
  const message = (err as Error)?.message ?? String(err);
  return { step, reason: message.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>').slice(0, 160) };
}

/** Throws when the server closed the phone for good (a 44xx code other than "finalized"). */
function assertOpen(device: Device, role: Role): void {
  const fatal = device.closes.find(
    (c) => c.code >= 4400 && c.code < 4500 && c.code !== FINALIZED_CLOSE,
  );
  if (fatal) {
    const rejected = device.events.find((e) => e.type === 'rejected-update');
    throw new StepError(
      'connection',
      `${role} closed with ${fatal.code}${rejected && 'reason' in rejected ? ` (${rejected.reason})` : fatal.reason ? ` (${fatal.reason})` : ''}`,
    );
  }
}

/**
 * Fan-out of simulated pairs: latencies (ms) of edits from one phone to the other, and how
 * many edits were followed (sent while both phones were online, and not overtaken by a
 * reconnection, which resends them as catch-up). Every followed edit should end as a sample:
 * the difference is edits that never arrived as live updates.
 */
export interface FanoutTally {
  latencies: number[];
  followed: number;
}

export const fanoutTally = (): FanoutTally => ({ latencies: [], followed: 0 });

/**
 * Fan-out latency from `from` to `to`: each local update is stamped with the sender's clock
 * after it; it has arrived once the receiver's state vector holds that clock.
 */
function trackFanout(from: Device, to: Device, tally: FanoutTally): void {
  const samples = tally.latencies;
  const pending: Array<[clock: number, at: number]> = [];
  let last = 0;
  const online = (d: Device) => d.provider.wsconnected && d.provider.synced;
  from.doc.on('update', (_u: Uint8Array, origin: unknown) => {
    if (origin === from.provider) return;
    const clock = Y.getState(from.doc.store, from.doc.clientID);
    if (clock === last) return; // a deletion only: nothing to follow
    last = clock;
    // Edits made while either phone is offline arrive with the reconnection: not fan-out.
    if (online(from) && online(to)) {
      pending.push([clock, performance.now()]);
      tally.followed++;
    }
  });
  for (const d of [from, to]) {
    d.provider.on('status', ({ status }: { status: string }) => {
      if (status === 'connected') return;
      tally.followed -= pending.length;
      pending.length = 0;
    });
  }
  to.doc.on('update', (_u: Uint8Array, origin: unknown) => {
    if (origin !== to.provider || pending.length === 0) return;
    const have = Y.getState(to.doc.store, from.doc.clientID);
    const now = performance.now();
    while (pending.length > 0 && pending[0]![0] <= have) samples.push(now - pending.shift()![1]);
  });
}

function describe(action: FillAction): string {
  switch (action.kind) {
    case 'type':
      return `types ${action.what} "${action.text}" (${updatesOf(action)} updates, one per character)`;
    case 'stroke':
      return `draws ${action.what} (${updatesOf(action)} updates, one per point)`;
    case 'tick':
      return `ticks ${action.what}`;
    default:
      return `sets ${action.what}`;
  }
}

/**
 * Extra connections of each party, as a tampered app would open, write into a root their
 * party may not: the other vehicle, and the server-owned signatures. Each must be refused with
 * `rejected-update` and close 4403, and the honest phones must never see the write.
 */
async function forbiddenWrites(
  pair: OpenedPair,
  opts: PairOptions,
  tally: TamperAttempt[],
  say: (line: string) => void,
): Promise<void> {
  const attempts: Array<{ kind: string; role: Role; write: (doc: Y.Doc) => void }> = [
    {
      kind: 'B writes into vehicle A',
      role: 'B',
      write: (doc) => writeSection(doc, 'vehicleA', { remarks: 'Modifié par B' }),
    },
    {
      kind: 'A writes into vehicle B',
      role: 'A',
      write: (doc) => writeSection(doc, 'vehicleB', { circumstanceCount: 9 }),
    },
    {
      kind: 'B writes a signature into the document',
      role: 'B',
      write: (doc) =>
        doc.getMap('signatures').set('B', {
          hash: '0'.repeat(64),
          signature: 'forged',
          deviceId: 'forged',
          userId: 'forged',
          signedAt: new Date().toISOString(),
        }),
    },
  ];
  await Promise.all(
    attempts.map(async ({ kind, role, write }) => {
      const base = role === 'A' ? pair.syncBaseA : pair.syncBaseB;
      const rogue = connectDevice(base, pair.sessionId, role === 'A' ? pair.tokenA : pair.tokenB);
      try {
        await rogue.synced();
        write(rogue.doc);
        try {
          await waitFor(() => rogue.closes.length > 0, 10_000, 'no close', 20);
        } catch {
          tally.push({ kind, expected: 'close 4403', outcome: 'accepted' });
          say(`  ✗ ${kind}: the server did not refuse it`);
          return;
        }
        const code = rogue.closes[0]!.code;
        const event = rogue.events.find((e) => e.type === 'rejected-update');
        tally.push({ kind, expected: 'close 4403', outcome: `close ${code}` });
        say(
          `  ✓ ${kind}: refused (rejected-update${event && 'reason' in event ? `: ${event.reason}` : ''}; close ${code})`,
        );
      } catch (err) {
        tally.push({ kind, expected: 'close 4403', outcome: `error ${(err as Error).message}` });
      } finally {
        rogue.destroy();
      }
    }),
  );
}

/** Signatures that must not be accepted, each with the refusal the contract gives it. */
async function forgedSignatures(
  pair: OpenedPair,
  opts: PairOptions,
  keys: Record<Role, DeviceKey>,
  hash: string,
  tally: TamperAttempt[],
  say: (line: string) => void,
): Promise<void> {
  const url = opts.urls.b;
  const id = pair.sessionId;
  const otherHash = createHash('sha256').update(`${hash}:tampered`).digest('hex');
  const outsider = await mintToken(opts.secret, `sim-outsider-${id}`, `sim-outsider-phone-${id}`);
  const outsiderKey = newDeviceKey();
  await registerKey(url, outsider, outsiderKey);
  const attempts: Array<{
    kind: string;
    expected: string;
    token: string;
    hash: string;
    signature: string;
  }> = [
    {
      kind: 'B signs with a key it never registered',
      expected: 'FORBIDDEN',
      token: pair.tokenB,
      hash,
      signature: signHash(newDeviceKey(), id, 'B', hash),
    },
    {
      kind: "B replays A's signature",
      expected: 'FORBIDDEN',
      token: pair.tokenB,
      hash,
      signature: signHash(keys.A, id, 'A', hash),
    },
    {
      kind: 'B signs other content and claims the current hash',
      expected: 'FORBIDDEN',
      token: pair.tokenB,
      hash,
      signature: signHash(keys.B, id, 'B', otherHash),
    },
    {
      kind: 'A signs content that is not the document',
      expected: 'CONFLICT',
      token: pair.tokenA,
      hash: otherHash,
      signature: signHash(keys.A, id, 'A', otherHash),
    },
    {
      kind: 'an outsider signs the session',
      expected: 'FORBIDDEN',
      token: outsider,
      hash,
      signature: signHash(outsiderKey, id, 'B', hash),
    },
    {
      kind: 'B sends a malformed signature',
      expected: 'BAD_USER_INPUT',
      token: pair.tokenB,
      hash,
      signature: Buffer.from('not a signature').toString('base64'),
    },
  ];
  await Promise.all(
    attempts.map(async (t) => {
      const res = await gql(url, t.token, SIGN_CONSTAT, {
        sessionId: id,
        contentHash: t.hash,
        signature: t.signature,
      });
      const outcome = res.errors ? (errorCode(res) ?? 'error') : 'accepted';
      tally.push({ kind: t.kind, expected: t.expected, outcome });
      say(
        `  ${outcome === 'accepted' ? '✗' : '✓'} ${t.kind}: ${outcome === 'accepted' ? 'ACCEPTED' : `refused (${outcome})`}`,
      );
    }),
  );
}
