import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { DEMO_JOBS_DIR } from '../examples/demo';
import { EntityByIdReader } from '../src/connectors/readers/entity-by-id-reader';
import { ConfigurationError } from '../src/errors';
import { loadJobs, parseJobFile, prepareJobs } from '../src/jobs/loader';
import { ServiceRegistry } from '../src/jobs/service-registry';
import { buildRegistries } from '../src/runtime';
import { createTestDatabase } from './helpers';

const GOOD = `
jobs:
  shop_order_export:
    title: Export orders
    type: export
    steps:
      push_order:
        title: Push order
        reader: entity.by_id
        processor: shop.order_processor
        writer: shop.order_writer
        parameters: { table: contacts, identifier: id }
      push_lines:
        title: Push order lines
        reader: entity.by_id
        processor: shop.order_processor
        writer: shop.order_writer
        parameters:
          table: contacts
          identifier: [id]
          columns: [id, email]
`;

describe('job definitions', () => {
  it('should load steps in declared order with their parameters', () => {
    const [job] = parseJobFile(GOOD, 'shop.yaml');
    expect(job?.name).toBe('shop_order_export');
    expect(job?.steps.map((s) => s.name)).toEqual(['push_order', 'push_lines']);
    expect(job?.steps[0]?.parameters).toEqual({ table: 'contacts', identifier: 'id' });
    expect(job?.steps[1]?.parameters).toEqual({ table: 'contacts', identifier: ['id'], columns: ['id', 'email'] });
  });

  it.each([
    ['a missing writer', GOOD.replace('        writer: shop.order_writer\n        parameters', '        parameters'), 'jobs.shop_order_export.steps.push_order.writer'],
    ['a wrong type', GOOD.replace('type: export', 'type: import'), 'jobs.shop_order_export.type'],
    ['an unknown field', GOOD.replace('title: Export orders', 'title: Export orders\n    retries: 3'), 'jobs.shop_order_export'],
    ['a bad job name', GOOD.replace('shop_order_export:', 'Shop-Order:'), 'jobs.Shop-Order'],
    ['no steps', 'jobs:\n  empty_job:\n    title: t\n    type: export\n    steps: {}\n', 'jobs.empty_job.steps'],
  ])('should reject %s naming the file and the field path', (_case, text, fieldPath) => {
    expect(() => parseJobFile(text, 'broken.yaml')).toThrow(ConfigurationError);
    expect(() => parseJobFile(text, 'broken.yaml')).toThrow(new RegExp(`^broken\\.yaml: .*${fieldPath.replace(/\./g, '\\.')}`));
  });

  it('should reject invalid YAML and duplicate keys with the file name', () => {
    expect(() => parseJobFile('jobs: [unclosed', 'bad.yaml')).toThrow(/^bad\.yaml: invalid YAML/);
    expect(() => parseJobFile('jobs: {}\njobs: {}\n', 'dup.yaml')).toThrow(/^dup\.yaml: invalid YAML/);
  });

  it('should reject a job declared in two files', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tidesync-jobs-'));
    await writeFile(path.join(dir, 'a.yaml'), GOOD);
    await writeFile(path.join(dir, 'b.yml'), GOOD);
    await expect(loadJobs([dir])).rejects.toThrow(/b\.yml: job 'shop_order_export' is already declared in .*a\.yaml/);
  });

  it('should load the shipped demo job', async () => {
    const jobs = await loadJobs([DEMO_JOBS_DIR]);
    expect(jobs.get('demo_contact_export')?.steps.map((s) => s.writer)).toEqual(['demo.contact_writer']);
  });
});

describe('job preparation against services and the catalog', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let db: Kysely<any>;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    ({ app: db, drop } = await createTestDatabase());
  });
  afterAll(async () => drop());

  function registry(): ServiceRegistry {
    const services = new ServiceRegistry();
    services.register('reader', 'entity.by_id', new EntityByIdReader(db));
    services.register('processor', 'shop.order_processor', { process: () => ({ kind: 'skip', reason: 'x' }) });
    services.register('writer', 'shop.order_writer', { write: async () => ({ remoteId: '1', remoteVersion: null }) });
    return services;
  }

  it('should accept a job whose services and table exist', async () => {
    await expect(prepareJobs(parseJobFile(GOOD, 'shop.yaml'), registry())).resolves.toBeUndefined();
  });

  it('should name the unknown service and list the known ones', async () => {
    const jobs = parseJobFile(GOOD.replace(/shop\.order_writer/g, 'shop.ordr_writer'), 'shop.yaml');
    await expect(prepareJobs(jobs, registry())).rejects.toThrow(
      "shop.yaml: jobs.shop_order_export.steps.push_order.writer: unknown writer 'shop.ordr_writer' (known: shop.order_writer)",
    );
  });

  it('should reject a table or column that is not in the catalog', async () => {
    const noTable = parseJobFile(GOOD.replace('table: contacts', 'table: "contacts; drop table contacts"'), 'shop.yaml');
    await expect(prepareJobs(noTable, registry())).rejects.toThrow(
      /steps\.push_order\.parameters: table 'public\.contacts; drop table contacts' does not exist/,
    );
    const noColumn = parseJobFile(GOOD.replace('columns: [id, email]', 'columns: [id, tenant]'), 'shop.yaml');
    await expect(prepareJobs(noColumn, registry())).rejects.toThrow(/column 'tenant' does not exist in table 'public\.contacts'/);
  });

  it('should refuse a connector whose export job is not declared', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tidesync-jobs-'));
    await expect(
      buildRegistries({
        jobs: [dir],
        register: (connectors) =>
          connectors.register({ integrationType: 'shop', name: 'order', getExportJobName: () => 'shop_nope' }),
      }),
    ).rejects.toThrow("connector 'shop/order' names export job 'shop_nope', which no job definition declares");
  });
});
