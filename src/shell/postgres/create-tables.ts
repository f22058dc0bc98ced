import type { Database } from './database.ts'

/**
 * The advisory lock every kpipe schema change takes (an arbitrary constant: "kpip" in ASCII).
 * Held to the end of the transaction, so the next creator sees the committed catalog.
 */
export const SCHEMA_LOCK_KEY = 0x6b706970

/**
 * Runs `CREATE … IF NOT EXISTS` statements so that any number of processes may run them at once.
 * PostgreSQL's IF NOT EXISTS checks the catalog before inserting into it, not atomically: two
 * sessions creating one table together both pass the check and the second fails with
 * `duplicate key value violates unique constraint "pg_type_typname_nsp_index"` (23505). One
 * transaction that first takes a transaction-level advisory lock serialises the creators; each
 * statement then sees what the previous holder committed and does nothing.
 */
export async function createTablesIdempotently(db: Pick<Database, 'transaction'>, statements: readonly string[]): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK_KEY])
    for (const statement of statements) await tx.query(statement)
  })
}
