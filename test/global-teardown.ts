/** Jest global teardown: stops the servers global setup started and removes their temp folder. */
import { rm } from 'node:fs/promises';
import { TEST_STACK_KEY, testStackFolders, testStackSlot } from './global-setup';

/** Stops the shared servers; both are attempted even if one fails. */
export default async function globalTeardown(): Promise<void> {
  const stack = testStackSlot()[TEST_STACK_KEY];
  if (!stack) return;
  delete testStackSlot()[TEST_STACK_KEY];
  const results = await Promise.allSettled([stack.temporal?.teardown(), stack.postgres?.stop()]);
  await Promise.all(testStackFolders(stack).map((folder) => rm(folder, { recursive: true, force: true })));
  const failed = results.find((result) => result.status === 'rejected');
  if (failed?.status === 'rejected') throw failed.reason;
}
