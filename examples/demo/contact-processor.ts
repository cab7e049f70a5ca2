/** Maps a local `contacts` row to the demo CRM's contact fields. */
import { z } from 'zod';
import type { Entity, ProcessResult, Processor } from 'tidesync';
import type { RemoteContactFields } from './remote/crm-client';

/** The local row, as the `entity.by_id` reader returns it. */
const localContactSchema = z.object({
  id: z.union([z.number(), z.string()]),
  first_name: z.string(),
  last_name: z.string().nullable(),
  email: z.string().nullable(),
  phone: z.string().nullable(),
  company: z.string().nullable(),
});

/** Local snake_case columns to the remote's camelCase fields. */
export class DemoContactProcessor implements Processor {
  /** A contact without an email cannot exist on the CRM: skip it with the reason. */
  process(entity: Entity): ProcessResult {
    const parsed = localContactSchema.safeParse(entity);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`contact ${String(entity['id'])}: field '${issue?.path.join('.')}' ${issue?.message}`);
    }
    const row = parsed.data;
    if (!row.email) return { kind: 'skip', reason: 'contact has no email address' };
    const data: RemoteContactFields = {
      firstName: row.first_name,
      lastName: row.last_name ?? '',
      email: row.email,
      phone: row.phone,
      company: row.company,
    };
    return { kind: 'changeset', data: { ...data } };
  }
}
