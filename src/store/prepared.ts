/**
 * Statements that run on every batch of a bulk export, built and compiled by Kysely once per
 * database handle and then executed with new parameters. Building a query, running the schema
 * plugin over its tree and compiling it took about 250 us of CPU a call on the 2-core machine,
 * more than the pg driver's own work for the same statement (an UPDATE of no rows: 410 us of CPU
 * built each time, 150 us as plain SQL), and a bulk page ran a dozen of them.
 *
 * `prepared(build)` calls `build` once per handle with placeholders for its arguments, compiles
 * it, and remembers where each placeholder landed among the compiled query's parameters; each call
 * then runs that SQL with its own arguments in those places. So a placeholder may only stand where
 * Kysely makes a parameter of a value (a comparison, a `set`, a `values` column, a `sql` value),
 * never where the query's shape depends on it (a list whose length varies, `sql.lit`, an `in`
 * over a JavaScript array): pass one array parameter (`any($1::text[])`) or one JSON text instead.
 */
import { type Compilable, type CompiledQuery, type Kysely, type QueryResult, createQueryId } from 'kysely';

/** Stands for an argument while the statement is compiled. */
class Placeholder {
  constructor(readonly index: number) {}
}

interface Compiled {
  readonly query: CompiledQuery<unknown>;
  /** For each compiled parameter, the index of the argument it takes, or -1 for a constant. */
  readonly slots: readonly number[];
}

/**
 * A statement with `arity` arguments compiled once per database handle (see the module comment).
 * `build` receives the placeholders as its arguments, typed as the values they stand for.
 */
export function prepared<D, A extends readonly unknown[], R>(
  arity: A['length'],
  build: (db: Kysely<D>, ...args: A) => Compilable<R>,
): (db: Kysely<D>, ...args: A) => Promise<QueryResult<R>> {
  const byHandle = new WeakMap<Kysely<D>, Compiled>();
  const compile = (db: Kysely<D>): Compiled => {
    const placeholders = Array.from({ length: arity }, (_, i) => new Placeholder(i)) as unknown as A;
    const query = build(db, ...placeholders).compile() as CompiledQuery<unknown>;
    const slots = query.parameters.map((value) => (value instanceof Placeholder ? value.index : -1));
    const missing = Array.from({ length: arity }, (_, i) => i).filter((i) => !slots.includes(i));
    if (missing.length > 0) {
      throw new Error(`prepared statement: argument ${missing.join(', ')} is not a parameter of: ${query.sql}`);
    }
    return { query, slots };
  };
  return async (db, ...args) => {
    let compiled = byHandle.get(db);
    if (!compiled) byHandle.set(db, (compiled = compile(db)));
    const { query, slots } = compiled;
    const parameters = query.parameters.map((value, i) => {
      const slot = slots[i] as number;
      return slot < 0 ? value : args[slot];
    });
    return db.executeQuery<R>({ ...query, parameters, queryId: createQueryId() } as CompiledQuery<R>);
  };
}
