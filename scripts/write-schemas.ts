/** `constat schemas [--check]`: writes docs/events/*.json from the schemas in code, or checks them. */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EVENT_SCHEMAS } from '../integrations/event-schemas.js';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../docs/events');

export function schemaFiles(): Map<string, string> {
  return new Map(
    Object.entries(EVENT_SCHEMAS).map(([type, schema]) => [
      `${type}.json`,
      JSON.stringify(schema, null, 2) + '\n',
    ]),
  );
}

/** Files that differ from what the code says (empty when docs are current). */
export function staleSchemaFiles(): string[] {
  return [...schemaFiles()]
    .filter(([name, text]) => {
      const file = path.join(DIR, name);
      return !existsSync(file) || readFileSync(file, 'utf8') !== text;
    })
    .map(([name]) => name);
}

export async function writeSchemas(argv: string[]): Promise<void> {
  if (argv.includes('--check')) {
    const stale = staleSchemaFiles();
    if (stale.length > 0)
      throw new Error(`docs/events is out of date (${stale.join(', ')}): run constat schemas`);
    process.stdout.write('docs/events is up to date\n');
    return;
  }
  mkdirSync(DIR, { recursive: true });
  for (const [name, text] of schemaFiles()) writeFileSync(path.join(DIR, name), text);
  process.stdout.write(`wrote ${schemaFiles().size} schemas to docs/events\n`);
}
