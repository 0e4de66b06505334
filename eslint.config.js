// Lint only for what the type checker does not catch and production has burnt us with:
// promises nobody awaits or catches (an unhandled rejection takes the process down), and
// imports against the direction of the layers (each folder's README says what it may import):
//
//   server → finalization → integrations → persistence, hub → sync → constat
//
// beside them media/ (files), report/ (the PDF), ai/ (the AI service), client/ (the phone side).
// finalization/ joins the three halves of finalization (finalization/README.md).
import tseslint from 'typescript-eslint';

const FOLDERS = [
  'constat',
  'sync',
  'hub',
  'persistence',
  'integrations',
  'finalization',
  'server',
  'media',
  'report',
  'ai',
  'client',
  'scripts',
  'web',
];

/**
 * `folder/**` may import the folders in `may` (and libraries) and nothing else of the project;
 * `except` lists single modules of otherwise forbidden folders; `libraries` forbids packages.
 */
function boundary(folder, may, { except = [], libraries = [] } = {}) {
  const forbidden = FOLDERS.filter((f) => f !== folder && !may.includes(f));
  const rule = {
    patterns: [
      {
        group: [...forbidden.map((f) => `**/${f}/**`), ...except.map((m) => `!**/${m}`)],
        message: `${folder}/ may import ${may.length ? `${may.join('/, ')}/` : 'no other folder'}${except.length ? ` and ${except.join(', ')}` : ''} (${folder}/README.md)`,
      },
      ...libraries.map((lib) => ({
        group: [lib, `${lib}/*`],
        message: `${folder}/ does not use ${lib} (${folder}/README.md)`,
      })),
    ],
  };
  return { files: [`${folder}/**/*.ts`], rules: { 'no-restricted-imports': ['error', rule] } };
}

export default tseslint.config(
  { ignores: ['node_modules/**', '.cache/**', '.data/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser, parserOptions: { projectService: true } },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': [
        'error',
        { checksVoidReturn: { arguments: false } },
      ],
    },
  },
  // The domain: pure, no I/O.
  boundary('constat', [], { libraries: ['ioredis', 'postgres', 'kafkajs', 'ws', 'hono', 'pino'] }),
  // The room engine: the domain only; storage, Redis and delivery are behind its ports.
  boundary('sync', ['constat'], { libraries: ['ioredis', 'postgres', 'kafkajs', 'hono'] }),
  // The Redis adapters, beside persistence/.
  boundary('hub', ['sync', 'constat'], { libraries: ['postgres', 'kafkajs'] }),
  // The PostgreSQL adapters (attachment records come from media/).
  boundary('persistence', ['sync', 'constat', 'media'], { libraries: ['ioredis', 'kafkajs'] }),
  // Delivery to insurers (Kafka), the outbox and the event contract.
  boundary('integrations', ['persistence', 'hub', 'sync', 'constat', 'media'], {
    libraries: ['hono'],
  }),
  // A signed document becomes a constat: the event and the transaction.
  boundary('finalization', ['integrations', 'persistence', 'sync', 'constat', 'media']),
  // Files: media/ sits beside sync/; the server wires it to the database, never the other way.
  boundary('media', ['constat']),
  // The PDF report, wired by the server.
  boundary('report', ['constat', 'sync', 'persistence', 'integrations', 'media']),
  // The AI service: the domain, the media store (photos in, videos out), the event contract,
  // the Kafka plumbing and the insurer names of integrations/, and the database helpers of
  // persistence/.
  boundary('ai', ['constat', 'media'], {
    except: [
      'integrations/companies.js',
      'integrations/events.js',
      'integrations/event-schemas.js',
      'integrations/event-validator.js',
      'integrations/event-consumer.js',
      'integrations/kafka.js',
      'integrations/poll-loop.js',
      'integrations/message-attempts.js',
      'persistence/database.js',
      'persistence/migrate.js',
    ],
  }),
  // The phone side: the domain, the wire codec, and the development tokens.
  boundary('client', ['constat'], {
    except: ['sync/protocol.js', 'server/auth.js', 'server/config.js'],
    libraries: ['ioredis', 'postgres', 'kafkajs'],
  }),
  // integrations/ owns Kafka: the client library stays in integrations/kafka.ts, behind the
  // interfaces it exports (the test and benchmark tools drive a broker directly).
  {
    files: ['**/*.ts'],
    ignores: ['integrations/kafka.ts', 'tests/**', 'scripts/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'ImportDeclaration[source.value=/^kafkajs/]',
          message: 'kafkajs is used by integrations/kafka.ts only (integrations/README.md)',
        },
      ],
    },
  },
);
