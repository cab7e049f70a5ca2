/** The NOTIFY channel that wakes relays; PostgreSQL delivers it only when the transaction commits. */
export const OUTBOX_CHANNEL = 'tidesync_outbox';
