/**
 * For `constat simulate --fraud-rate`: reads the AI's fraud assessment of each finalized
 * constat through GraphQL, as an insurer sees it (drivers do not see fraud scores), and
 * summarises how the scores of suspicious and honest pairs separate.
 */
import { mintToken, gql } from '../../client/graphql.js';

export interface FraudGroup {
  pairs: number;
  scored: number;
  meanScore: number;
  /** Share of the scored constats banded REVIEW or HIGH. */
  flagged: number;
}

export interface FraudSeparation {
  suspicious: FraudGroup;
  honest: FraudGroup;
}

const QUERY = `query Fraud($id: ID!) { constat(id: $id) { fraudAssessment { score band } } }`;

export async function collectFraudScores(
  url: string,
  secret: string,
  insurers: readonly string[],
  pairs: ReadonlyArray<{ constatId?: string; suspicious: boolean }>,
  timeoutMs = 20_000,
): Promise<FraudSeparation> {
  const token = await mintToken(secret, 'sim-insurer', 'sim-insurer', {
    roles: insurers.map((uid) => `insurer:${uid}`),
  });
  const scores = new Map<string, { score: number; band: string }>();
  const wanted = pairs.filter((p) => p.constatId);
  const deadline = Date.now() + timeoutMs;
  while (scores.size < wanted.length && Date.now() < deadline) {
    for (const p of wanted) {
      if (scores.has(p.constatId!)) continue;
      const res = await gql(url, token, QUERY, { id: p.constatId });
      const data = res.data as
        | { constat?: { fraudAssessment?: { score: number; band: string } | null } | null }
        | undefined;
      const found = data?.constat?.fraudAssessment;
      if (found) scores.set(p.constatId!, found);
    }
    if (scores.size < wanted.length) await new Promise((r) => setTimeout(r, 250));
  }
  const group = (suspicious: boolean): FraudGroup => {
    const members = wanted.filter((p) => p.suspicious === suspicious);
    const got = members.flatMap((p) =>
      scores.has(p.constatId!) ? [scores.get(p.constatId!)!] : [],
    );
    return {
      pairs: members.length,
      scored: got.length,
      meanScore: got.length ? got.reduce((s, g) => s + g.score, 0) / got.length : NaN,
      flagged: got.length ? got.filter((g) => g.band !== 'LOW').length / got.length : NaN,
    };
  };
  return { suspicious: group(true), honest: group(false) };
}
