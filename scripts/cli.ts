/**
 * The `constat` command: `serve` (the default; what `npm start` runs), `token`, `migrate`,
 * `simulate`, `test-run` (what `npm test` runs). Run `constat help` for usage.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadStorageConfig, tokenSigningSecret } from '../server/config.js';
import { createLogger } from '../server/logger.js';

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
  schemas [--check]              write (or check) docs/events/*.json from the schemas in code
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
    const config = loadStorageConfig();
    const logger = createLogger(config.logLevel);
    const { openDatabase } = await import('../persistence/database.js');
    const { migrate } = await import('../persistence/migrate.js');
    const db = await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      logger,
    });
    try {
      const { applied } = await migrate(db.sql, logger);
      process.stdout.write(
        applied.length ? `applied ${applied.join(', ')}\n` : 'database is up to date\n',
      );
    } finally {
      await db.close();
    }
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
  schemas: async (argv) => (await import('./write-schemas.js')).writeSchemas(argv),
  help: async () => void process.stdout.write(USAGE),
};

class UsageError extends Error {}

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
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`constat: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  throw err;
}
