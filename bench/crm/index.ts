/**
 * `npm run bench -- crm`: does the demo CRM keep up with a bulk export? Writes 10,000 and then
 * 100,000 new contacts through `POST /contacts/batch` (batches of 100, the demo writer's
 * `writeBatch`, a few requests in flight) to a CRM with a data file, running in its own process.
 * After a short warm-up, prints the time per 1,000 writes over the first and the last tenth of
 * each phase (about equal when a write's cost does not grow with the data), the server's CPU time against wall time,
 * the file sizes, and how long a clean stop and a restart on the result take.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Change, WriteContext } from 'tidesync';
import { DEFAULT_BREAKER_THRESHOLD, DEFAULT_PROBE_INTERVAL_MS, DEFAULT_RETRY_WINDOW_MS } from 'tidesync';
import { DemoContactWriter } from '../../examples/demo/contact-writer';
import { crmFileSizes } from '../../examples/demo/remote/crm-journal';
import { type RemoteCrm, type RemoteSample, startRemoteCrm } from './remote';

const PHASES = [10_000, 100_000] as const;
/** Written first and not measured, so the phases compare a warm server with a warm server, not the JIT. */
const WARMUP = 5_000;
const BATCH_SIZE = 100;
/** Batches in flight: enough to keep the server busy while the client reads an answer. */
const CONCURRENCY = 4;
/** The share of a phase's batches measured at its start and at its end. */
const WINDOW_SHARE = 0.1;

/** Milliseconds per 1,000 writes. */
export interface PerThousand {
  readonly start: number;
  readonly end: number;
  readonly overall: number;
}

/** One phase's figures; times in milliseconds. */
export interface CrmPhaseReport {
  readonly contacts: number;
  readonly wallMs: number;
  /** Wall time per 1,000 writes over the first and the last tenth of the phase, and overall. */
  readonly msPer1000: PerThousand;
  /**
   * The server's CPU time per 1,000 writes over the same windows: what the store costs, much less
   * disturbed than wall time by other processes on the machine.
   */
  readonly serverCpuMsPer1000: PerThousand;
  /** `end / start` of both: about 1 when a write's cost does not grow with the data. */
  readonly endToStart: { readonly wall: number; readonly serverCpu: number };
  /**
   * Journal compactions in each window and in the whole phase: each rewrites the snapshot, so a
   * window holding one costs more; geometric growth keeps their share of the writes constant.
   */
  readonly compactions: { readonly start: number; readonly end: number; readonly all: number };
  /** The server process's CPU time (user + system) in the phase, and its share of the wall time. */
  readonly server: { readonly cpuMs: number; readonly cpuShare: number };
  readonly files: { readonly snapshotBytes: number; readonly journalBytes: number };
}

/** What the benchmark prints. */
export interface CrmBenchResult {
  readonly bench: 'crm';
  /** `loadAverage`: the 1-minute load when the run began; above `cpus`, other work shares the machine. */
  readonly machine: { readonly cpus: number; readonly node: string; readonly loadAverage: number };
  readonly config: {
    readonly warmup: number;
    readonly phases: readonly number[];
    readonly batchSize: number;
    readonly concurrency: number;
    readonly windowShare: number;
  };
  readonly phases: CrmPhaseReport[];
  /** A clean stop (which compacts the journal), then a start on the same data file. */
  readonly restart: { readonly stopMs: number; readonly startMs: number; readonly contacts: number; readonly snapshotBytes: number };
  readonly totalMs: number;
}

/** Runs the benchmark; the server process and its data folder are removed however it ends. */
export async function runCrmBench(log: (line: string) => void): Promise<CrmBenchResult> {
  const began = performance.now();
  const load = os.loadavg()[0] ?? 0;
  const directory = await mkdtemp(path.join(os.tmpdir(), 'tidesync-bench-crm-'));
  const dataFile = path.join(directory, 'crm.json');
  const token = randomBytes(16).toString('hex');
  let remote: RemoteCrm | undefined;
  try {
    remote = await startRemoteCrm(dataFile, token);
    log(`warming up with ${WARMUP} contacts`);
    await runPhase(remote, dataFile, token, 0, WARMUP);
    const phases: CrmPhaseReport[] = [];
    let written = WARMUP;
    for (const contacts of PHASES) {
      log(`writing ${contacts} contacts in batches of ${BATCH_SIZE}`);
      phases.push(await runPhase(remote, dataFile, token, written, contacts));
      written += contacts;
      const last = phases[phases.length - 1];
      log(`  ${last?.msPer1000.start} ms per 1000 at the start, ${last?.msPer1000.end} at the end (wall)`);
      log(`  ${last?.serverCpuMsPer1000.start} ms per 1000 at the start, ${last?.serverCpuMsPer1000.end} at the end (server cpu)`);
    }
    const stopMs = await remote.stop();
    const { snapshotBytes } = crmFileSizes(dataFile);
    remote = await startRemoteCrm(dataFile, token);
    const startMs = remote.startMs;
    const contacts = await countContacts(remote.url, token);
    if (contacts !== written) throw new Error(`the restarted crm holds ${contacts} contacts, not the ${written} written`);
    log(`restarted on ${snapshotBytes} bytes in ${Math.round(startMs)} ms with ${contacts} contacts`);
    await remote.stop();
    remote = undefined;
    return {
      bench: 'crm',
      machine: { cpus: os.cpus().length, node: process.version, loadAverage: round(load) },
      config: { warmup: WARMUP, phases: PHASES, batchSize: BATCH_SIZE, concurrency: CONCURRENCY, windowShare: WINDOW_SHARE },
      phases,
      restart: { stopMs: round(stopMs), startMs: round(startMs), contacts, snapshotBytes },
      totalMs: Math.round(performance.now() - began),
    };
  } finally {
    remote?.kill();
    await rm(directory, { recursive: true, force: true });
  }
}

/** Writes `contacts` new contacts numbered from `offset`, `CONCURRENCY` batches at a time. */
async function runPhase(remote: RemoteCrm, dataFile: string, token: string, offset: number, contacts: number): Promise<CrmPhaseReport> {
  const writer = new DemoContactWriter();
  const context = writeContext(remote.url, token);
  const batches = contacts / BATCH_SIZE;
  const window = Math.max(1, Math.round(batches * WINDOW_SHARE));
  // Wall time and the server's CPU time when 0, `window`, `batches - window` and all batches are done.
  const marks = new Map<number, { at: number; sample: Promise<RemoteSample> }>();
  const mark = (done: number): void => void marks.set(done, { at: performance.now(), sample: remote.sample() });
  let next = 0;
  let done = 0;
  mark(0);
  const sender = async (): Promise<void> => {
    for (let batch = next++; batch < batches; batch = next++) {
      const first = offset + batch * BATCH_SIZE;
      const changes = Array.from({ length: BATCH_SIZE }, (_, index) => newContact(first + index));
      const refused = (await writer.writeBatch(changes, context)).find((result) => !result.ok);
      if (refused && !refused.ok) throw new Error(`the crm refused contact ${refused.key}: ${refused.error.message}`);
      done += 1;
      if (done === window || done === batches - window || done === batches) mark(done);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, sender));

  const at = async (count: number): Promise<{ at: number; cpuMs: number; compactions: number }> => {
    const found = marks.get(count);
    if (!found) throw new Error(`no mark after ${count} batches`);
    const { cpu, compactions } = await found.sample;
    return { at: found.at, cpuMs: (cpu.user + cpu.system) / 1000, compactions };
  };
  const [zero, early, late, all] = await Promise.all([at(0), at(window), at(batches - window), at(batches)]);
  const per1000 = (ms: number, count: number): number => round((ms / (count * BATCH_SIZE)) * 1000);
  const wallMs = all.at - zero.at;
  const cpuMs = all.cpuMs - zero.cpuMs;
  // Both windows are `window` batches: from the phase's start, and up to its end.
  const wall = { start: per1000(early.at - zero.at, window), end: per1000(all.at - late.at, window), overall: per1000(wallMs, batches) };
  const cpu = {
    start: per1000(early.cpuMs - zero.cpuMs, window),
    end: per1000(all.cpuMs - late.cpuMs, window),
    overall: per1000(cpuMs, batches),
  };
  return {
    contacts,
    wallMs: round(wallMs),
    msPer1000: wall,
    serverCpuMsPer1000: cpu,
    endToStart: { wall: round(wall.end / wall.start), serverCpu: round(cpu.end / cpu.start) },
    compactions: {
      start: early.compactions - zero.compactions,
      end: all.compactions - late.compactions,
      all: all.compactions - zero.compactions,
    },
    server: { cpuMs: round(cpuMs), cpuShare: round(cpuMs / wallMs) },
    files: crmFileSizes(dataFile),
  };
}

/** A create of contact `n`, keyed as the engine would key it: stable, unique per change. */
function newContact(n: number): Change {
  const data = {
    firstName: `First${n}`,
    lastName: `Last${n}`,
    email: `contact${n}@example.com`,
    phone: null,
    company: n % 3 === 0 ? 'Acme' : null,
  };
  return {
    key: String(n),
    operation: 'create',
    data,
    remoteId: null,
    idempotencyKey: `bench-contact-${n}`,
    partial: false,
    expectedVersion: null,
  };
}

function writeContext(baseUrl: string, token: string): WriteContext {
  const integration = {
    id: 1,
    type: 'demo',
    name: 'bench',
    enabled: true,
    twoWaySync: false,
    syncPriority: 'local' as const,
    transport: { baseUrl },
    secretRef: null,
    retryWindowMs: DEFAULT_RETRY_WINDOW_MS,
    probeIntervalMs: DEFAULT_PROBE_INTERVAL_MS,
    breakerThreshold: DEFAULT_BREAKER_THRESHOLD,
    rateLimit: { requestsPerSecond: null, maxConcurrent: null },
  };
  return { integration, parameters: {}, secret: token, signal: new AbortController().signal };
}

async function countContacts(url: string, token: string): Promise<number> {
  const response = await fetch(`${url}/contacts`, { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error(`GET /contacts answered ${response.status}`);
  return ((await response.json()) as unknown[]).length;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
