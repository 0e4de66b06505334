/**
 * The `constat` command: `serve` (the default; what `npm start` runs), `token`, `migrate`,
 * `simulate`, `test-run` (what `npm test` runs). Run `constat help` for usage.
 */
import { parseArgs } from 'node:util';
import {
  ConfigError,
  loadAiServiceConfig,
  loadStorageConfig,
  tokenSigningSecret,
} from '../server/config.js';
import { createLogger } from '../server/logger.js';
import type { Database } from '../persistence/database.js';

const USAGE = `usage: constat <command> [options]

commands:
  serve [--dev]                  run the server (configuration from the environment); --dev (what
                                 npm start runs) is CONSTAT_DEV=1: the built-in development
                                 secret when no key is set, on loopback only
  token --user U --device D      mint a development token (HS256, AUTH_JWT_SECRET or the built-in
        [--name N] [--role R]…   development secret)
        [--expires 12h] [--issuer I] [--audience A]
  migrate                        apply database migrations and exit
  insurer --company UID          example insurer: print finalized constats from the company's topic
        [--answer] [--from-beginning]  (and answer dz.claim.opened.v1)
  ai                             the AI service (fraud, cost) on KAFKA_BROKERS; /healthz /readyz
                                 /metrics on AI_PORT
  ai train --csv FILE            fit the fraud model on labelled history (docs/ai.md), report AUC and
        [--out FILE]             precision/recall on a held-out split, write the model file
  dev                            the local stack (npm run dev:stack): Kafka broker, server, AI
                                 service, an insurer on Kafka and one on webhooks; Ctrl-C stops it
  companies <command>            the company registry: list, add, set-delivery, rotate-secret,
                                 credentials, revoke-client, enable-webhook, disable, enable
  deliveries <command>           webhook deliveries: failing, dead, replay (one or a company's)
  schemas [--check]              write (or check) docs/events/*.json from the schemas in code
  rerender <constatId>…          queue new versions of these constats' PDF reports (earlier
        [--outdated]             versions stay); --outdated: every report another template made
  simulate [--pairs N] [--url U]…  simulated phone pairs against a server (or an embedded one):
        [--offline] [--tamper]   open, join, co-edit, sign, finalized; --help for every option
        [--kafka B] [--verbose]
  test-run [files…]              run the test suite (what npm test runs)
  help                           this text
`;

const TOKEN_USAGE = `usage: constat token --user U --device D [--name N] [--role R]… [--expires 12h]

Prints a development JWT (HS256) signed with AUTH_JWT_SECRET, or with the built-in development
secret when it is unset.

  --user U       the user id (claim sub)
  --device D     the device id (claim did)
  --name N       a display name (claim name)
  --role R       a role, repeatable: insurer:<company uid> for insurer staff, admin
  --expires T    lifetime: 30m, 12h, 7d… (default 12h)
  --help         this text

example: TOKEN=$(npx constat token --user driver-a --device phone-a)
         STAFF=$(npx constat token --user agent-1 --device desk-1 --role insurer:saa)
`;

const commands: Record<string, (argv: string[]) => Promise<void>> = {
  serve: async (argv) => {
    const { values } = parseArgs({ args: argv, options: { dev: { type: 'boolean' } } });
    if (values.dev) process.env.CONSTAT_DEV = '1';
    await (await import('../server/main.js')).main();
  },
  token: async (argv) => {
    const { values } = parseArgs({
      args: argv,
      options: {
        user: { type: 'string' },
        device: { type: 'string' },
        name: { type: 'string' },
        role: { type: 'string', multiple: true },
        expires: { type: 'string', default: '12h' },
        issuer: { type: 'string' },
        audience: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) return void process.stdout.write(TOKEN_USAGE);
    if (!values.user || !values.device) throw new UsageError('token needs --user and --device');
    const secret = tokenSigningSecret();
    const { mintDevelopmentToken } = await import('../server/auth.js');
    process.stdout.write(
      (await mintDevelopmentToken({
        secret,
        issuer: values.issuer ?? process.env.AUTH_JWT_ISSUER,
        audience: values.audience ?? process.env.AUTH_JWT_AUDIENCE,
        userId: values.user,
        deviceId: values.device,
        ...(values.name ? { name: values.name } : {}),
        ...(values.role ? { roles: values.role } : {}),
        expiresIn: values.expires,
      })) + '\n',
    );
  },
  migrate: async () => {
    await withMigratedDatabase(async (_sql, applied) => {
      process.stdout.write(
        applied.length ? `applied ${applied.join(', ')}\n` : 'database is up to date\n',
      );
    });
  },
  rerender: async (argv) => {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { outdated: { type: 'boolean', default: false } },
    });
    if (!values.outdated && positionals.length === 0)
      throw new UsageError('rerender needs constat ids or --outdated');
    const { createDocumentsRepository } = await import('../persistence/documents-repository.js');
    const { TEMPLATE_VERSION } = await import('../report/report-template.js');
    await withMigratedDatabase(async (sql) => {
      const documents = createDocumentsRepository(sql);
      let queued = 0;
      if (values.outdated) queued += await documents.enqueueOutdated(TEMPLATE_VERSION);
      for (const id of positionals) {
        await documents.enqueue(id, 'rerender').catch((err: unknown) => {
          throw new UsageError(`${id}: not a finalized constat (${(err as Error).message})`);
        });
        queued++;
      }
      // A running instance with Chromium renders them at its next poll (REPORT_POLL_MS).
      process.stdout.write(`queued ${queued} report render(s)\n`);
    });
  },
  'test-run': async (argv) => (await import('./test-run.js')).runTests(argv),
  simulate: async (argv) => {
    const { runSimulateCommand, SimulateUsageError } = await import('./simulate.js');
    try {
      await runSimulateCommand(argv);
    } catch (err) {
      if (err instanceof SimulateUsageError) throw new UsageError(err.message);
      throw err;
    }
  },
  insurer: async (argv) => (await import('./insurer.js')).runInsurer(argv),
  ai: async (argv) => {
    const config = loadAiServiceConfig();
    if (argv[0] === 'train') {
      const { values } = parseArgs({
        args: argv.slice(1),
        options: { csv: { type: 'string' }, out: { type: 'string', default: 'fraud-model.json' } },
      });
      if (!values.csv) throw new UsageError('ai train needs --csv FILE');
      const { loadRuleSet } = await import('../ai/fraud/rules.js');
      const { trainFromFile } = await import('../ai/fraud/train.js');
      const model = trainFromFile(values.csv, values.out, loadRuleSet(config.ai.rulesFile));
      process.stdout.write(
        `model ${model.id} written to ${values.out} (${model.metrics.rows} rows)\n` +
          `held-out split: AUC ${model.metrics.auc}, precision ${model.metrics.precision}, ` +
          `recall ${model.metrics.recall} at score ≥ ${model.metrics.threshold}\n` +
          `use it with AI_FRAUD_MODEL=${values.out}\n`,
      );
      return;
    }
    if (argv.length > 0) throw new UsageError(`ai: unknown argument "${argv[0]}"`);
    if (!config.kafkaBrokers)
      throw new UsageError(
        'ai needs KAFKA_BROKERS (without a broker, `constat serve` runs the AI service itself)',
      );
    const { startAiService } = await import('../ai/main.js');
    const { listen, stopOnSignals } = await import('../server/http.js');
    const logger = createLogger(config.logLevel);
    const service = await startAiService(
      {
        kafka: {
          brokers: config.kafkaBrokers,
          clientId: `${config.kafka.clientId}-ai`,
          partitions: config.kafka.partitions,
          replicationFactor: config.kafka.replicationFactor,
        },
        groupId: config.ai.consumerGroup,
        databaseUrl: config.ai.databaseUrl,
        dataDir: config.dataDir,
        ...(config.ai.rulesFile ? { rulesFile: config.ai.rulesFile } : {}),
        ...(config.ai.modelFile ? { modelFile: config.ai.modelFile } : {}),
        retentionDays: config.ai.retentionDays,
        ocr: config.ai.ocr,
        media: config.media.store,
        video: config.ai.video,
      },
      logger,
    );
    const http = await listen(service.app.fetch, { port: config.ai.port, host: config.host }).catch(
      async (err: unknown) => {
        await service.stop();
        throw err;
      },
    );
    process.stderr.write(`constat AI service on ${http.url} (/healthz /readyz /metrics)\n`);
    stopOnSignals(async () => {
      await http.close();
      await service.stop();
    }, logger);
  },
  dev: async () => (await import('./dev-stack.js')).runDevStack(),
  companies: async (argv) => operatorCommand('companies', argv),
  deliveries: async (argv) => operatorCommand('deliveries', argv),
  schemas: async (argv) => (await import('./write-schemas.js')).writeSchemas(argv),
  help: async () => void process.stdout.write(USAGE),
};

class UsageError extends Error {}

/** `constat companies …` and `constat deliveries …` (scripts/companies.ts) on the database. */
async function operatorCommand(which: 'companies' | 'deliveries', argv: string[]): Promise<void> {
  const ops = await import('./companies.js');
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help') {
    return void process.stdout.write(
      which === 'companies' ? ops.COMPANIES_USAGE : ops.DELIVERIES_USAGE,
    );
  }
  const out = (line: string) => void process.stdout.write(line + '\n');
  const run = which === 'companies' ? ops.runCompanies : ops.runDeliveries;
  try {
    await withMigratedDatabase((sql) => run(argv, sql, out));
  } catch (err) {
    if (err instanceof ops.OperatorError) {
      process.stderr.write(`constat ${which}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** Opens the configured database, applies pending migrations, runs `fn`, closes it. */
async function withMigratedDatabase(
  fn: (sql: Database['sql'], applied: string[]) => Promise<void>,
): Promise<void> {
  const config = loadStorageConfig();
  const logger = createLogger(config.logLevel);
  const { openDatabase } = await import('../persistence/database.js');
  const { migrate } = await import('../persistence/migrate.js');
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    template: config.pgliteTemplate,
    logger,
  });
  try {
    const { applied } = await migrate(db.sql, logger);
    await fn(db.sql, applied);
  } finally {
    await db.close();
  }
}

const [name = 'serve', ...rest] = process.argv.slice(2);
const command = commands[name === '--help' || name === '-h' ? 'help' : name];
if (!command) {
  process.stderr.write(`constat: unknown command "${name}"\n\n${USAGE}`);
  process.exit(2);
}
try {
  await command(rest);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`constat: invalid configuration: ${err.message}\n`);
    process.exit(1);
  }
  // Bad data files or training input: one line saying which and why.
  if (['TrainingError', 'FraudDataError', 'CostTableError'].includes((err as Error).name)) {
    process.stderr.write(`constat: ${(err as Error).message}\n`);
    process.exit(1);
  }
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`constat: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  throw err;
}
