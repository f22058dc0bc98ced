/**
 * The values of `starts` once every one has settled, never before: when one start fails at once,
 * another may still be under way, and a teardown run then would find nothing to stop and leave it
 * running. The first failure, in their order, is thrown.
 */
export async function allStarted<T extends readonly unknown[]>(starts: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(starts)
  const failed = settled.find((result) => result.status === 'rejected')
  if (failed) throw failed.reason
  return settled.map((result) => (result as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> }
}
