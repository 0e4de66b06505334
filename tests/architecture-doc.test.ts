/**
 * docs/architecture.md's table "step of the flow → file → function" stays true: every file it
 * names exists, and every function it names is exported there (a class's method, or a member
 * of an exported object, is looked for inside the file). Text only: nothing is imported or
 * started.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DOC = readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8');

interface Row {
  step: string;
  file: string;
  names: string[];
}

/** The rows of the table under the heading "The flow, step by step". */
function flowTable(): Row[] {
  const start = DOC.indexOf('## The flow, step by step');
  assert.ok(start >= 0, 'docs/architecture.md has a "The flow, step by step" section');
  const lines = DOC.slice(start).split('\n');
  const rows: Row[] = [];
  let inTable = false;
  for (const line of lines.slice(1)) {
    if (line.startsWith('## ')) break;
    if (!line.startsWith('|')) {
      if (inTable) break;
      continue;
    }
    inTable = true;
    const cells = line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    if (cells[0] === 'step' || /^-+$/.test(cells[0] ?? '')) continue;
    const code = (cell: string | undefined) =>
      [...(cell ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    const [file] = code(cells[1]);
    assert.ok(file, `row "${cells[0]}" names a file`);
    rows.push({ step: cells[0]!, file: file!, names: code(cells[2]) });
  }
  return rows;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `name`, `Class.method` or `object.member.member`: exported, then found inside the file. */
function defines(source: string, name: string): boolean {
  const [head, ...members] = name.split('.');
  const exported = new RegExp(
    `export\\s+(?:async\\s+)?(?:function\\*?|class|const|let|interface|type)\\s+${escape(head!)}\\b`,
  );
  if (!exported.test(source)) return false;
  return members.every((m) =>
    new RegExp(`(?:^|\\s|#)(?:async\\s+)?${escape(m)}\\s*(?:\\(|:|<)`, 'm').test(source),
  );
}

const test = suite('docs/architecture.md: the flow table');

test('names the steps of the flow, each with a file and a function', () => {
  const steps = flowTable().map((r) => r.step.toLowerCase());
  for (const step of [
    'open',
    'join',
    'admit',
    'inspect',
    'append',
    'fan-out',
    'compact',
    'sign',
    'finalize',
    'relay',
    'consume',
    'query',
  ]) {
    assert.ok(
      steps.some((s) => s.includes(step)),
      `a row for "${step}" (rows: ${steps.join(', ')})`,
    );
  }
  for (const row of flowTable()) assert.ok(row.names.length > 0, `${row.step}: names a function`);
});

test('every file exists and defines the functions named', () => {
  for (const row of flowTable()) {
    const file = path.join(ROOT, row.file);
    assert.ok(existsSync(file), `${row.step}: ${row.file} exists`);
    const source = readFileSync(file, 'utf8');
    for (const name of row.names) {
      assert.ok(defines(source, name), `${row.step}: ${row.file} defines ${name}`);
    }
  }
});

test('the check itself notices a name that is not there', () => {
  const source = 'export class Gate {\n  async admit(x: number) {}\n}\nexport function helper() {}';
  assert.ok(defines(source, 'Gate.admit'));
  assert.ok(defines(source, 'helper'));
  assert.not.ok(defines(source, 'Gate.refuse'));
  assert.not.ok(defines(source, 'Missing'));
  assert.not.ok(defines('function hidden() {}', 'hidden'), 'not exported');
});

test.run();
