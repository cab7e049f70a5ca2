import type { CrmContact } from './crm-contact';
import { ContactTable } from './crm-table';

/** A contact with `id`, and `externalKey` when given. */
function contact(id: string, externalKey?: string): CrmContact {
  const fields = { firstName: 'Alice', lastName: '', email: 'alice@example.com', phone: null, company: null };
  return { id, version: 1, ...fields, ...(externalKey === undefined ? {} : { externalKey }) };
}

describe('demo crm contact table', () => {
  it('should find a contact by its key until it is deleted or the table cleared', () => {
    const table = new ContactTable();
    table.set(contact('c_1', 'ext-1'));
    table.set(contact('c_2'));
    table.set({ ...contact('c_1', 'ext-1'), version: 2 });
    expect(table.getByKey('ext-1')).toMatchObject({ id: 'c_1', version: 2 });
    expect(table.delete('c_1')).toMatchObject({ id: 'c_1' });
    expect(table.getByKey('ext-1')).toBeUndefined();
    table.set(contact('c_3', 'ext-1'));
    expect(table.getByKey('ext-1')?.id).toBe('c_3');
    table.clear();
    expect(table.getByKey('ext-1')).toBeUndefined();
    expect([...table.values()]).toEqual([]);
  });

  it('should refuse a second contact with a taken key, and move a changed key', () => {
    const table = new ContactTable();
    table.set(contact('c_1', 'ext-1'));
    expect(() => table.set(contact('c_2', 'ext-1'))).toThrow('demo crm external key "ext-1" is held by c_1, so c_2 cannot take it too');
    expect(table.get('c_2')).toBeUndefined();
    table.set(contact('c_1', 'ext-2'));
    expect(table.getByKey('ext-1')).toBeUndefined();
    expect(table.getByKey('ext-2')?.id).toBe('c_1');
  });
});
