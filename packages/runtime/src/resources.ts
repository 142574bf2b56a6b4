/**
 * Opens several resources at once, all or none: when one fails, those that opened are released
 * (a release that fails is ignored) and the first failure is thrown. What the caller gets back
 * is in the order asked, and its own to release. Its own entry (`@stemflow/runtime/resources`):
 * a library that needs only this does not load the adapters.
 */
export async function openAll<T>(opening: Promise<T>[], release: (r: T) => unknown): Promise<T[]> {
  const settled = await Promise.allSettled(opening);
  const opened = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s) => s.status === 'rejected');
  if (!failed) return opened;
  await Promise.all(opened.map(async (r) => {
    try {
      await release(r);
    } catch {
      // released as far as it goes: the failure that matters is the open's
    }
  }));
  throw failed.reason;
}
