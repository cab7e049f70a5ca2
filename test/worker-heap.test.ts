import { spawn } from 'node:child_process';
import path from 'node:path';
import v8 from 'node:v8';
import { WORKER_HEAP_GROWING_PERCENT, tuneWorkerHeap } from '../src/worker';

const root = path.resolve(__dirname, '..');

describe("the worker process's heap growth", () => {
  it('should set V8 to grow the old generation by 50% unless TIDESYNC_HEAP_GROWING_PERCENT says otherwise', () => {
    expect(tuneWorkerHeap({})).toBe(WORKER_HEAP_GROWING_PERCENT);
    expect(tuneWorkerHeap({ TIDESYNC_HEAP_GROWING_PERCENT: '80' })).toBe(80);
    expect(tuneWorkerHeap({ TIDESYNC_HEAP_GROWING_PERCENT: '0' })).toBeNull();
    expect(() => tuneWorkerHeap({ TIDESYNC_HEAP_GROWING_PERCENT: 'lots' })).toThrow(
      "TIDESYNC_HEAP_GROWING_PERCENT 'lots' is not a whole number from 0 to 1000",
    );
    // Back to what the rest of the run expects.
    v8.setFlagsFromString(`--heap-growing-percent=${WORKER_HEAP_GROWING_PERCENT}`);
  });

  it('should refuse a bad TIDESYNC_HEAP_GROWING_PERCENT when tidesync worker starts, before it connects anywhere', async () => {
    const child = spawn(process.execPath, [path.join(root, 'bin/tidesync.js'), 'worker'], {
      cwd: root,
      env: { ...process.env, TIDESYNC_HEAP_GROWING_PERCENT: '-5' },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect({ code, stderr: stderr.trim() }).toEqual({
      code: 1,
      stderr: "tidesync: TIDESYNC_HEAP_GROWING_PERCENT '-5' is not a whole number from 0 to 1000",
    });
  });
});
