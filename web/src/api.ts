/**
 * The GraphQL client: one POST per operation, errors turned into `ApiError` with the server's
 * `extensions.code` (and `fieldErrors` when the constat is incomplete); subscriptions over SSE
 * with graphql-sse, the protocol GraphQL Yoga speaks.
 */
import { createClient, type Client } from 'graphql-sse';

export interface FieldError {
  path: string;
  code: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly fieldErrors: FieldError[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

interface GraphQLErrorShape {
  message: string;
  extensions?: { code?: string; fieldErrors?: FieldError[] };
}

export class Api {
  #sse: Client | undefined;

  constructor(private readonly token: () => string) {}

  async request<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    let res: Response;
    try {
      res = await fetch('/graphql', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${this.token()}`,
        },
        body: JSON.stringify({ query, variables }),
      });
    } catch {
      throw new ApiError('NETWORK', 'the server cannot be reached');
    }
    const body = (await res.json().catch(() => null)) as {
      data?: T;
      errors?: GraphQLErrorShape[];
    } | null;
    if (!body) throw new ApiError('NETWORK', `unexpected answer (HTTP ${res.status})`);
    const error = body.errors?.[0];
    if (error) {
      throw new ApiError(
        error.extensions?.code ?? 'ERROR',
        error.message,
        error.extensions?.fieldErrors ?? [],
      );
    }
    return body.data as T;
  }

  /**
   * Calls `next` for each result until the returned function is called. `connected` runs each
   * time the stream is (re)established: the server has then read the state it will report
   * changes against, so a query made from there misses nothing (a change that happened while
   * the stream was down, or before it started, is in that query's answer).
   */
  subscribe<T>(
    query: string,
    variables: Record<string, unknown>,
    next: (data: T) => void,
    onError: (err: Error) => void,
    connected: () => void = () => {},
  ): () => void {
    this.#sse ??= createClient({
      url: '/graphql',
      headers: () => ({ authorization: `Bearer ${this.token()}` }),
      retryAttempts: 1_000,
    });
    return this.#sse.subscribe<T>(
      { query, variables },
      {
        next: (result) => {
          if (result.data) next(result.data as T);
          else if (result.errors?.[0]) onError(new Error(result.errors[0].message));
        },
        error: (err: unknown) =>
          onError(err instanceof Error ? err : new Error(JSON.stringify(err))),
        complete: () => {},
      },
      { connected },
    );
  }

  close(): void {
    this.#sse?.dispose();
  }
}

/** True when the server's schema lacks a field this app asks for (an older server). */
export function isMissingField(err: unknown): boolean {
  return err instanceof ApiError && /Cannot query field/.test(err.message);
}
