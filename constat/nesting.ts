/**
 * How deep content may nest, and an iterative measure of plain JSON depth.
 *
 * Hashing a document walks it (materialise, canonical JSON), and so do phones rendering it. A
 * chain of 20,000 nested maps is about 250 KB — under every size limit — and a walk that
 * recursed per level would overflow the stack. The constat's own layout nests at most four
 * levels (vehicleA.driver.… , sketch.elements.<id>.points), so a limit of 32 costs nothing
 * legitimate. Levels: each shared type and each JSON object or array inside a root counts one;
 * an entry of a root is at level 1.
 */
export const MAX_NESTING_DEPTH = 32;

/**
 * Whether `value` nests more than `limit` objects/arrays deep (a scalar has depth 0, `{}` 1).
 * Iterative, and it stops as soon as the answer is known, so a hostile value costs at most
 * what it takes to find `limit + 1` levels.
 */
export function jsonDepthExceeds(value: unknown, limit: number): boolean {
  if (limit < 0) return true;
  // Most content is scalars (a stroke's coordinates): answered without allocating.
  if (value === null || typeof value !== 'object') return false;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > limit) return true;
    const children = Array.isArray(v) ? v : Object.values(v as Record<string, unknown>);
    for (const child of children) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}
