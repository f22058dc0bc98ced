import type { Database } from './database.ts'

/**
 * Runs `CREATE … IF NOT EXISTS` statements so that several processes starting at once all
 * succeed: concurrent creators can still collide on the catalog's unique indexes (23505) or see
 * the relation appear between the check and the create (42P07); the statements are then run
 * again, and find everything in place.
 */
export async function createSchema(db: Pick<Database, 'query'>, statements: readonly string[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      for (const statement of statements) await db.query(statement)
      return
    } catch (error) {
      const code = (error as { code?: string }).code
      if ((code !== '23505' && code !== '42P07') || attempt >= 3) throw error
    }
  }
}
