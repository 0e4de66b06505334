/**
 * OCR through the whole product on the embedded defaults (`npm start`: PGlite, in-process hub,
 * no broker, file media store): driver A photographs a licence through the media flow, both
 * sign; the embedded AI service reads the paper from core's media store and the
 * `dz.ai.ocr_verified.v1` lands on the constat's timeline. The form says licence 160123456, the
 * paper 160823457: a mismatch with both values, quoted by the fraud score. `/readyz` names the
 * OCR engine.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { gql, startTestServer, token, type TestServer } from './support/server.js';
import { eventually, finalizeConstat, type Finalized } from './support/signing.js';
import { setUp } from './support/suite.js';
import { attachFile } from '../scripts/sim/attach.js';
import { specimens } from './fixtures/ocr/specimens.js';
import type { OcrData } from '../ai/ocr/ocr-function.js';

interface Ctx {
  server: TestServer;
  constat: Finalized;
}

const test = suite<Ctx>('OCR in the embedded server', {} as Ctx);

setUp(test, async (ctx) => {
  const licence = (await specimens()).find((s) => s.name === 'licence-degraded')!;
  ctx.server = await startTestServer({ database: 'pglite', hub: 'memory' });
  ctx.constat = await finalizeConstat(ctx.server, {
    beforeSigning: async ({ a, pair }) => {
      await attachFile(ctx.server.url, pair.tokenA, pair.sessionId, a.doc, 'vehicleA', {
        kind: 'licence',
        contentType: licence.contentType,
        bytes: licence.bytes,
        sha256: createHash('sha256').update(licence.bytes).digest('hex'),
      });
    },
  });
});
test.after(async (ctx) => {
  await ctx.server?.stop();
});

const QUERY = `query C($id: ID!) { constat(id: $id) {
  aiFindings { type source data }
  fraudAssessment { signals { name reason } }
} }`;

test('/readyz names the OCR engine', async ({ server }) => {
  const state = await eventually(async () => {
    const res = (await (await fetch(`${server.url}/readyz`)).json()) as {
      features: Record<string, string>;
    };
    return res.features.ocr?.startsWith('available') ? res.features.ocr : undefined;
  }, 60_000);
  assert.match(state, /^available \((native: tesseract|wasm: tesseract\.js) \d/);
});

test('the paper is read and the mismatch reaches the timeline and the fraud score', async (ctx) => {
  const insurer = await token('staff-saa-ocr', 'desk-ocr', { roles: ['insurer:saa'] });
  const c = await eventually(
    async () => {
      const res = await gql(ctx.server.url, insurer, QUERY, { id: ctx.constat.constatId });
      const got = res.data?.constat;
      return got?.fraudAssessment ? got : undefined;
    },
    240_000,
    'no fraud score on the constat',
  );
  const ocr = (c.aiFindings as Array<{ type: string; source: string; data: string }>).filter(
    (f) => f.type === 'dz.ai.ocr_verified.v1',
  );
  assert.is(ocr.length, 1);
  assert.is(ocr[0]!.source, 'constat-ai-ocr');
  const data = JSON.parse(ocr[0]!.data) as OcrData;
  assert.is(data.document, 'licence');
  assert.is(data.role, 'A');
  assert.is(data.verdict, 'mismatch');
  const number = data.fields.find((f) => f.field === 'number')!;
  assert.equal(
    { typed: number.typed, read: number.read, match: number.match },
    { typed: '160123456', read: '160823457', match: false },
  );
  const signal = (c.fraudAssessment.signals as Array<{ name: string; reason: string }>).find(
    (s) => s.name === 'ocr_mismatch',
  );
  assert.ok(signal, 'the fraud score has the OCR signal');
  assert.match(signal.reason, 'A licence number: typed "160123456", read "160823457"');
});

test.run();
