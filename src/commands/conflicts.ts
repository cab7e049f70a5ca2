/** `tidesync conflicts` and `tidesync reset`: review conflicts, and let a remote-removed entity export again. */
import { listConflicts } from '../store/conflicts';
import { resetSyncState } from '../store/sync-state';
import { encodeEntityId, parseEntityId } from '../entity-id';
import { getIntegration } from '../store/integrations';
import { openCommandContext } from './connect';

/** Prints recorded conflicts, newest first. */
export async function conflictsCommand(options: { json: boolean; limit: number; integration?: string }): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const rows = await listConflicts(ctx.store, {
      limit: options.limit,
      ...(options.integration ? { integration: options.integration } : {}),
    });
    if (options.json) {
      console.log(JSON.stringify(rows));
      return 0;
    }
    if (rows.length === 0) console.log('no conflicts recorded');
    for (const r of rows) {
      console.log(
        `${r.created_at.toISOString().replace('T', ' ').slice(0, 19)}  ${r.integration}/${r.connector}/${r.entity_id}  ` +
          `${r.field}: local ${JSON.stringify(r.local_value)}, remote ${JSON.stringify(r.remote_value)} ` +
          `(was ${JSON.stringify(r.base_value)}) -> ${r.winner} wins by ${r.rule === 'field_rule' ? 'field rule' : 'sync priority'}`,
      );
    }
    return 0;
  } finally {
    await ctx.close();
  }
}

/** Forgets an entity's sync state so its next export creates it on the remote again. */
export async function resetCommand(integrationName: string, connector: string, id: string): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const integration = await getIntegration(ctx.store, integrationName);
    ctx.runtime.connectors.get(integration.type, connector);
    const key = encodeEntityId(parseEntityId(id));
    const removed = await resetSyncState(ctx.store, { integrationId: integration.id, connector }, key);
    console.log(
      removed
        ? `reset ${integrationName}/${connector}/${key}: its next export creates it on the remote`
        : `${integrationName}/${connector}/${key} has no sync state: nothing to reset`,
    );
    return removed ? 0 : 1;
  } finally {
    await ctx.close();
  }
}
