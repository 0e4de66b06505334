/**
 * axe-core (WCAG 2.x A and AA rules) on a page as it is now, in either engine: its source is
 * evaluated through the driver (DevTools protocol or WebDriver BiDi), where the page's CSP
 * (script-src 'self') does not apply.
 */
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import type { Page } from 'puppeteer-core';

interface Violation {
  id: string;
  help: string;
  nodes: Array<{ target: unknown[] }>;
}

let source: Promise<string> | undefined;

/** One line per violation: rule, help text and the elements it found. */
export async function axeViolations(page: Page): Promise<string[]> {
  source ??= readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(await source);
  const found = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (...args: unknown[]) => Promise<unknown> } })
      .axe;
    const result = (await axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
      resultTypes: ['violations'],
    })) as { violations: Violation[] };
    return result.violations.map((v) => ({
      id: v.id,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target })),
    }));
  });
  return found.map((v) => `${v.id} (${v.help}): ${JSON.stringify(v.nodes.map((n) => n.target))}`);
}
