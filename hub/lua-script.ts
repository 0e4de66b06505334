/**
 * A Lua script sent by its SHA1 (EVALSHA), and in full only when Redis does not have it yet
 * (after a restart or a SCRIPT FLUSH): the hub runs one per update, and sending the source
 * every time would cost Redis a hash of it and the network its bytes.
 */
import { createHash } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';

type Arg = string | number | Buffer;

export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** Runs it; bulk replies come back as strings. */
  run(redis: Redis, keys: readonly string[], args: readonly Arg[] = []): Promise<unknown> {
    return this.#run(redis, keys, args, false);
  }

  /** Runs it; bulk replies come back as Buffers. */
  runBuffer(redis: Redis, keys: readonly string[], args: readonly Arg[] = []): Promise<unknown> {
    return this.#run(redis, keys, args, true);
  }

  /**
   * Queues it on a pipeline (strings). Pipelines do not retry a missing script: the caller
   * runs it again with `run` when its reply is a NOSCRIPT error (`isNoScript`).
   */
  queue(pipeline: ChainableCommander, keys: readonly string[], args: readonly Arg[] = []): void {
    pipeline.evalsha(this.sha, keys.length, ...keys, ...args);
  }

  async #run(
    redis: Redis,
    keys: readonly string[],
    args: readonly Arg[],
    buffers: boolean,
  ): Promise<unknown> {
    const call = (command: string, first: string) =>
      buffers
        ? redis.callBuffer(command, first, keys.length, ...keys, ...args)
        : redis.call(command, first, keys.length, ...keys, ...args);
    try {
      return await call('EVALSHA', this.sha);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return call('EVAL', this.source);
    }
  }
}

export function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}
