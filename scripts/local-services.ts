/**
 * Where the local services are when the environment names none: the test runner, the test
 * helpers and the benchmarks all default to these (the server itself has no default: without
 * REDIS_URL it runs on the in-process hub).
 */
export { DEFAULT_TEST_DATABASE_URL as LOCAL_DATABASE_URL } from '../persistence/test-database.js';
export const LOCAL_REDIS_URL = 'redis://127.0.0.1:6379';

/** REDIS_URL, or the local Redis. */
export function redisUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.REDIS_URL || LOCAL_REDIS_URL;
}
