/** `tidesync capture install|remove`: change capture triggers on a connector's table. */
import { installCapture, removeCapture } from '../outbox/capture';
import { openCommandContext } from './connect';

/** Installs (or replaces) the capture trigger and prints what it watches. */
export async function captureInstallCommand(options: { integration: string; connector: string; fields?: string[] }): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const installed = await installCapture(ctx.runtime, {
      integration: options.integration,
      connector: options.connector,
      ...(options.fields ? { fields: options.fields } : {}),
    });
    console.log(
      `capturing ${installed.table} for ${options.integration}/${options.connector} as trigger ${installed.trigger}: ` +
        `inserts, deletes, and updates of ${installed.fields.length > 0 ? installed.fields.join(', ') : 'any column'}`,
    );
    return 0;
  } finally {
    await ctx.close();
  }
}

/** Removes the capture trigger. */
export async function captureRemoveCommand(options: { integration: string; connector: string }): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const removed = await removeCapture(ctx.runtime, options);
    console.log(removed ? 'capture removed' : 'no capture was installed');
    return 0;
  } finally {
    await ctx.close();
  }
}
