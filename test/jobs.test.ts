import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { DEMO_JOBS_DIR } from '../examples/demo';
import { EntityByIdReader, isEntityByIdReader, ORO_ENTITY_BY_ID_READER } from '../src/connectors/readers/entity-by-id-reader';
import type { Connector } from '../src/connectors/connector';
import { ConfigurationError } from '../src/errors';
import type { ConnectorRegistry } from '../src/connectors/registry';
import { loadJobs, parseJobFile, prepareJobs } from '../src/jobs/loader';
import { ServiceRegistry } from '../src/jobs/service-registry';
import { applyConnectorEntities } from '../src/jobs/resolve-parameters';
import { buildRegistries, createRuntime, getJob } from '../src/runtime';
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

/** Oro's example export job, copied verbatim from its reverse synchronization documentation. */
const ORO = readFileSync(path.join(__dirname, 'fixtures', 'jobs', 'oro-batch-job.yml'), 'utf8');

describe('job definitions', () => {
  it('should load steps in declared order with their parameters', () => {
    const [job] = parseJobFile(GOOD, 'shop.yaml');
    expect(job?.name).toBe('shop_order_export');
    expect(job?.steps.map((s) => s.name)).toEqual(['push_order', 'push_lines']);
    expect(job?.steps[0]?.parameters).toEqual({ table: 'contacts', identifier: 'id' });
    expect(job?.steps[1]?.parameters).toEqual({ table: 'contacts', identifier: ['id'], columns: ['id', 'email'] });
  });

  it.each([
    [
      'a missing writer',
      GOOD.replace('        writer: shop.order_writer\n        parameters', '        parameters'),
      'jobs.shop_order_export.steps.push_order.writer',
    ],
    ['a wrong type', GOOD.replace('type: export', 'type: import'), 'jobs.shop_order_export.type'],
    ['an unknown field', GOOD.replace('title: Export orders', 'title: Export orders\n    retries: 3'), 'jobs.shop_order_export'],
    ['a bad job name', GOOD.replace('shop_order_export:', 'Shop-Order:'), 'jobs.Shop-Order'],
    ['no steps', 'jobs:\n  empty_job:\n    title: t\n    type: export\n    steps: {}\n', 'jobs.empty_job.steps'],
  ])('should reject %s naming the file and the field path', (_case, text, fieldPath) => {
    expect(() => parseJobFile(text, 'broken.yaml')).toThrow(ConfigurationError);
    expect(() => parseJobFile(text, 'broken.yaml')).toThrow(new RegExp(`^broken\\.yaml: .*${fieldPath.replace(/\./g, '\\.')}`));
  });

  it("should accept Oro's batch_job.yml as it is: top-level jobs, class, services and parameters: ~", () => {
    expect(parseJobFile(ORO, 'batch_job.yml')).toEqual([
      {
        name: 'example_export',
        title: 'Job title here',
        type: 'export',
        source: 'batch_job.yml',
        steps: [
          {
            name: 'export_entity_1',
            title: 'Step title here',
            reader: 'oro_integration.reader.entity.by_id',
            processor: 'YOUR_PROCESSOR',
            writer: 'YOUR_REVERSE_WRITER',
            parameters: {},
            writeBack: null,
          },
        ],
      },
    ]);
  });

  it("should accept Akeneo's connector wrapper", () => {
    const text = `connector:\n  name: Shop connector\n${GOOD.replace(/\n/g, '\n  ')}`;
    expect(parseJobFile(text, 'batch_jobs.yml').map((j) => j.name)).toEqual(['shop_order_export']);
  });

  it('should read a nested step and a flat step into the same definition', () => {
    const nested = GOOD.replace(
      '        reader: entity.by_id\n        processor: shop.order_processor\n        writer: shop.order_writer\n        parameters: { table',
      '        services: { reader: entity.by_id, processor: shop.order_processor, writer: shop.order_writer }\n        parameters: { table',
    );
    expect(nested).not.toBe(GOOD);
    expect(parseJobFile(nested, 'shop.yaml')).toEqual(parseJobFile(GOOD, 'shop.yaml'));
  });

  it.each(['Oro\\Bundle\\BatchBundle\\Step\\ItemStep', 'Akeneo\\Bundle\\BatchBundle\\Step\\ItemStep', 'ItemStep', 'item'])(
    'should accept the item step class %s',
    (stepClass) => {
      const text = GOOD.replace('        title: Push order\n', `        title: Push order\n        class: '${stepClass}'\n`);
      expect(parseJobFile(text, 'shop.yaml')[0]?.steps[0]?.reader).toBe('entity.by_id');
    },
  );

  it('should read parameters: ~ and no parameters as none', () => {
    const none = GOOD.replace('        parameters: { table: contacts, identifier: id }\n', '');
    const tilde = GOOD.replace('parameters: { table: contacts, identifier: id }', 'parameters: ~');
    expect(parseJobFile(none, 'shop.yaml')[0]?.steps[0]?.parameters).toEqual({});
    expect(parseJobFile(tilde, 'shop.yaml')[0]?.steps[0]?.parameters).toEqual({});
  });

  it.each([
    [
      'services both nested and flat',
      ORO.replace('             services:', '             reader: entity.by_id\n             services:'),
      'example_export.steps.export_entity_1.services: name the services once, either under services or as reader, processor and writer on the step, not both (also on the step: reader)',
    ],
    [
      'no services at all',
      ORO.replace(/ {13}services:\n(.*\n){3}/, ''),
      'example_export.steps.export_entity_1.services: required: services { reader, processor, writer }, or reader, processor and writer on the step',
    ],
    [
      'a step class other than the item step',
      ORO.replace('Step\\ItemStep', 'Step\\ChunkStep'),
      "example_export.steps.export_entity_1.class: unsupported step class 'Oro\\Bundle\\BatchBundle\\Step\\ChunkStep': only the item step is supported",
    ],
    ['a missing nested writer', ORO.replace(/.*writer: .*\n/, ''), 'example_export.steps.export_entity_1.services.writer: '],
    [
      'a flat step without its writer',
      GOOD.replace('        writer: shop.order_writer\n        parameters: { table', '        parameters: { table'),
      'jobs.shop_order_export.steps.push_order.writer: required: a step that names its services on the step needs reader, processor and writer (it names reader and processor)',
    ],
    [
      'an unknown nested service role',
      ORO.replace('reader: ', 'loader: '),
      'example_export.steps.export_entity_1.services: Unrecognized key: "loader"',
    ],
    [
      'parameters that are not a mapping',
      ORO.replace('parameters: ~', 'parameters: [a]'),
      'example_export.steps.export_entity_1.parameters: ',
    ],
    [
      'a file that is not a mapping',
      '- example_export\n',
      '(root): a job file is a mapping: jobs: { <job>: ... }, <job>: ... at the top level, or connector: { name, jobs: { <job>: ... } }',
    ],
    ['a bare job beside the jobs wrapper', `${GOOD}${ORO.replace(/^ /gm, '')}`, '(root): Unrecognized key: "example_export"'],
    ['a connector without jobs', 'connector:\n  name: Shop\n', 'connector.jobs: '],
  ])('should reject %s naming the file, the field path and the problem', (_case, text, message) => {
    expect(() => parseJobFile(text, 'batch_job.yml')).toThrow(ConfigurationError);
    expect(() => parseJobFile(text, 'batch_job.yml')).toThrow(/^batch_job\.yml: /);
    expect(() => parseJobFile(text, 'batch_job.yml')).toThrow(message);
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

describe("connectors' entities as the entity.by_id reader's default parameters", () => {
  const jobs = () =>
    new Map(parseJobFile(`${ORO}${ORO.replace(/example_export/g, 'other_export')}`, 'batch_job.yml').map((j) => [j.name, j]));
  const connector = (name: string, job: string, entity?: Connector['entity']): Connector => ({
    integrationType: 'shop',
    name,
    getExportJobName: () => job,
    ...(entity ? { entity } : {}),
  });
  const ORDERS = { table: 'orders', identifier: ['tenant_id', 'id'], columns: ['tenant_id', 'id', 'total'] };

  it("should fill a step's missing parameters from the connector that exports with its job", () => {
    const before = jobs();
    const after = applyConnectorEntities(before, [connector('order', 'example_export', ORDERS), connector('plain', 'other_export')]);
    expect(after.get('example_export')?.steps[0]?.parameters).toEqual(ORDERS);
    expect(after.get('other_export')).toBe(before.get('other_export'));
    expect(before.get('example_export')?.steps[0]?.parameters).toEqual({});
  });

  it('should let the parameters a step sets win, and leave a step that reads another table alone', () => {
    const partial = parseJobFile(
      GOOD.replace('parameters: { table: contacts, identifier: id }', 'parameters: { columns: [id] }'),
      'shop.yaml',
    );
    const after = applyConnectorEntities(new Map(partial.map((j) => [j.name, j])), [
      connector('order', 'shop_order_export', { schema: 'shop', table: 'contacts', identifier: 'id', columns: ['id', 'email', 'phone'] }),
    ]);
    const [first, second] = after.get('shop_order_export')?.steps ?? [];
    expect(first?.parameters).toEqual({ schema: 'shop', table: 'contacts', identifier: 'id', columns: ['id'] });
    // The second step names table contacts without a schema, so it reads public.contacts, not shop.contacts.
    expect(second?.parameters).toEqual({ table: 'contacts', identifier: ['id'], columns: ['id', 'email'] });

    const sameTable = applyConnectorEntities(new Map(partial.map((j) => [j.name, j])), [
      connector('order', 'shop_order_export', { table: 'contacts', identifier: ['id'], columns: ['id', 'email', 'phone'] }),
    ]);
    expect(sameTable.get('shop_order_export')?.steps[1]?.parameters).toEqual({
      table: 'contacts',
      identifier: ['id'],
      columns: ['id', 'email'],
    });
    const onlyTable = parseJobFile(
      GOOD.replace('parameters: { table: contacts, identifier: id }', 'parameters: { table: contacts }'),
      'shop.yaml',
    );
    const filled = applyConnectorEntities(new Map(onlyTable.map((j) => [j.name, j])), [
      connector('order', 'shop_order_export', { schema: 'public', table: 'contacts', identifier: 'id' }),
    ]);
    expect(filled.get('shop_order_export')?.steps[0]?.parameters).toEqual({ schema: 'public', table: 'contacts', identifier: 'id' });
  });

  it('should not give parameters to steps that read with another reader', () => {
    const custom = parseJobFile(ORO.replace(ORO_ENTITY_BY_ID_READER, 'shop.order_reader'), 'batch_job.yml');
    const after = applyConnectorEntities(new Map(custom.map((j) => [j.name, j])), [connector('order', 'example_export', ORDERS)]);
    expect(after.get('example_export')?.steps[0]?.parameters).toEqual({});
  });

  it('should accept two connectors of one job that name the same entity, and refuse different ones', () => {
    const same = [
      connector('a', 'example_export', { table: 'orders', identifier: 'id' }),
      connector('b', 'example_export', { schema: 'public', table: 'orders', identifier: ['id'] }),
    ];
    expect(applyConnectorEntities(jobs(), same).get('example_export')?.steps[0]?.parameters).toEqual({ table: 'orders', identifier: 'id' });
    const different = [
      connector('a', 'example_export', { table: 'orders', identifier: 'id' }),
      connector('b', 'example_export', { table: 'invoices', identifier: 'id' }),
    ];
    expect(() => applyConnectorEntities(jobs(), different)).toThrow(ConfigurationError);
    expect(() => applyConnectorEntities(jobs(), different)).toThrow(
      "connectors 'shop/a' and 'shop/b' both export with job 'example_export' but name different entities " +
        '({"schema":"public","table":"orders","identifier":["id"]} and {"schema":"public","table":"invoices","identifier":["id"]})',
    );
  });

  it('should leave a connector whose job is not declared to the runtime to report', () => {
    expect(applyConnectorEntities(jobs(), [connector('order', 'nope_export', ORDERS)]).size).toBe(2);
  });
});

describe('job preparation against services and the catalog', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let db: Kysely<any>;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = database.app;
  });
  afterAll(async () => database.drop());

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

  it('should run write_back with the entity.by_id reader under its Oro name, and refuse it with another reader', async () => {
    const services = registry();
    services.register('reader', ORO_ENTITY_BY_ID_READER, services.get('reader', 'entity.by_id'));
    services.register('reader', 'shop.order_reader', { prepare: async () => undefined, read: async () => ({ found: [], missing: [] }) });
    const oro = GOOD.replace(
      '        reader: entity.by_id\n        processor: shop.order_processor\n        writer: shop.order_writer\n        parameters: { table: contacts, identifier: id }\n',
      `        reader: ${ORO_ENTITY_BY_ID_READER}\n        processor: shop.order_processor\n        writer: shop.order_writer\n        parameters: { table: contacts, identifier: id }\n        write_back: { column: crm_id }\n`,
    );
    expect(oro).toContain('write_back');
    await expect(prepareJobs(parseJobFile(oro, 'shop.yaml'), services)).resolves.toBeUndefined();
    const other = parseJobFile(oro.replace(ORO_ENTITY_BY_ID_READER, 'shop.order_reader'), 'shop.yaml');
    await expect(prepareJobs(other, services)).rejects.toThrow(
      "shop.yaml: jobs.shop_order_export.steps.push_order.parameters: write_back needs the entity.by_id reader (it writes into the reader's table)",
    );
  });

  it("should register Oro's reader name as the entity.by_id reader itself", async () => {
    const runtime = await createRuntime({ databases: database.databases, jobs: [] });
    expect(runtime.services.get('reader', ORO_ENTITY_BY_ID_READER)).toBe(runtime.services.get('reader', 'entity.by_id'));
    expect([ORO_ENTITY_BY_ID_READER, 'entity.by_id', 'entity.by_ids'].map(isEntityByIdReader)).toEqual([true, true, false]);
  });

  it("should run Oro's job with the table of its connector's entity, and say where a missing table goes", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tidesync-jobs-'));
    await writeFile(path.join(dir, 'batch_job.yml'), ORO);
    const register = (entity?: Connector['entity']) => (connectors: ConnectorRegistry, services: ServiceRegistry) => {
      connectors.register({
        integrationType: 'shop',
        name: 'contact',
        getExportJobName: () => 'example_export',
        ...(entity ? { entity } : {}),
      });
      services.register('processor', 'YOUR_PROCESSOR', { process: () => ({ kind: 'skip', reason: 'x' }) });
      services.register('writer', 'YOUR_REVERSE_WRITER', { write: async () => ({ remoteId: '1', remoteVersion: null }) });
    };
    const runtime = await createRuntime({
      databases: database.databases,
      jobs: [dir],
      register: register({ table: 'contacts', identifier: 'id', columns: ['id', 'email'] }),
    });
    expect(getJob(runtime, 'example_export').steps[0]?.parameters).toEqual({
      table: 'contacts',
      identifier: 'id',
      columns: ['id', 'email'],
    });
    await expect(createRuntime({ databases: database.databases, jobs: [dir], register: register() })).rejects.toThrow(
      `${path.join(dir, 'batch_job.yml')}: jobs.example_export.steps.export_entity_1.parameters: entity.by_id table: ` +
        'Invalid input: expected string, received undefined (set it in the step, or as the entity of the connector that exports with this job)',
    );
  });

  it('should refuse a connector whose export job is not declared', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tidesync-jobs-'));
    await expect(
      buildRegistries({
        jobs: [dir],
        register: (connectors) => connectors.register({ integrationType: 'shop', name: 'order', getExportJobName: () => 'shop_nope' }),
      }),
    ).rejects.toThrow("connector 'shop/order' names export job 'shop_nope', which no job definition declares");
  });
});
