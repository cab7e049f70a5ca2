import type { SyncState } from '../src/connectors/connector';
import { sameRow, sameState } from '../src/activities/same-input';

const state: SyncState = {
  remoteId: 'r1',
  snapshotHash: 'h',
  snapshot: { a: 1 },
  remoteVersion: '3',
  lastSyncedAt: new Date('2026-01-01T00:00:00Z'),
  lastError: null,
  status: 'active',
  attempts: 0,
  failedAt: null,
  pendingCreate: null,
};

describe('an entity and its sync state read again under the lock', () => {
  it('should be the same row only when every column holds the same value', () => {
    const row = { id: 1, name: 'Ada', at: new Date(5), tags: ['x'], doc: { k: [1] }, blob: Buffer.from('ab'), n: null };
    const copy = { ...row, at: new Date(5), tags: ['x'], doc: { k: [1] }, blob: Buffer.from('ab') };
    expect(sameRow(row, copy)).toBe(true);
    expect(sameRow(row, { ...copy, name: 'Grace' })).toBe(false);
    expect(sameRow(row, { ...copy, at: new Date(6) })).toBe(false);
    expect(sameRow(row, { ...copy, doc: { k: [2] } })).toBe(false);
    expect(sameRow(row, { ...copy, blob: Buffer.from('ac') })).toBe(false);
    expect(sameRow(row, { ...copy, n: 0 })).toBe(false);
    expect(sameRow(row, { ...copy, extra: 1 })).toBe(false);
    expect(sameRow(row, { id: 1, name: 'Ada', at: new Date(5), tags: ['x'], doc: { k: [1] }, blob: Buffer.from('ab'), other: null })).toBe(
      false,
    );
  });

  it('should be the same state only when nothing a write of it changes has changed', () => {
    expect(sameState(undefined, undefined)).toBe(true);
    expect(sameState(state, undefined)).toBe(false);
    expect(sameState(state, { ...state, lastSyncedAt: new Date('2026-01-01T00:00:00Z') })).toBe(true);
    for (const changed of [
      { lastSyncedAt: new Date('2026-01-01T00:00:01Z') },
      { snapshotHash: 'h2' },
      { remoteVersion: '4' },
      { status: 'failed' as const },
      { attempts: 1 },
      { lastError: 'boom' },
      { failedAt: new Date() },
      { pendingCreate: { idempotencyKey: 'k', data: {}, hash: 'h' } },
    ]) {
      expect(sameState(state, { ...state, ...changed })).toBe(false);
    }
  });
});
