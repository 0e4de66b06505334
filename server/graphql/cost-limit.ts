/**
 * Query cost, counted when the variables are known: every field costs 1, and the selection
 * under a field with a `first` argument counts once per item asked for (the literal, the
 * variable's value, or the schema default of 20). A static rule cannot see variables, so it
 * would let `first: $n` through at any size while refusing `first: 50` written out.
 */
import {
  GraphQLError,
  Kind,
  type DocumentNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';

const DEFAULT_FIRST = 20;

export function queryCost(
  document: DocumentNode,
  operationName: string | undefined | null,
  variables: Record<string, unknown>,
): number {
  const fragments = new Map(
    document.definitions.flatMap((d) =>
      d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d.selectionSet] as const] : [],
    ),
  );
  const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  const operation =
    operations.find((o) => !operationName || o.name?.value === operationName) ?? operations[0];
  if (!operation) return 0;
  const value = (node: ValueNode): unknown =>
    node.kind === Kind.VARIABLE
      ? variables[node.name.value]
      : node.kind === Kind.INT
        ? Number(node.value)
        : undefined;
  const cost = (set: SelectionSetNode, seen: ReadonlySet<string>): number => {
    let total = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        total += 1;
        if (!selection.selectionSet) continue;
        const first = selection.arguments?.find((a) => a.name.value === 'first');
        const n = first ? value(first.value) : undefined;
        const times = first ? (typeof n === 'number' && n > 0 ? n : DEFAULT_FIRST) : 1;
        total += times * cost(selection.selectionSet, seen);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        total += cost(selection.selectionSet, seen);
      } else {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        if (fragment && !seen.has(name)) total += cost(fragment, new Set([...seen, name]));
      }
    }
    return total;
  };
  return cost(operation.selectionSet, new Set());
}

export function costLimit(maxCost: number): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const cost = queryCost(
        args.document,
        args.operationName,
        (args.variableValues ?? {}) as Record<string, unknown>,
      );
      if (cost > maxCost) {
        setResultAndStopExecution({
          errors: [
            new GraphQLError(
              `query too costly: ${cost} > ${maxCost} (fields, times the items each page asks for)`,
              {
                extensions: { code: 'BAD_USER_INPUT', cost, maxCost },
              },
            ),
          ],
        });
      }
    },
  };
}
