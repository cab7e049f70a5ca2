/**
 * Custom search attributes tidesync sets on every export run, so runs can be found in the
 * Temporal UI (e.g. `TidesyncIntegration = "demo" AND TidesyncStatus = "failed"`).
 * The dev stack registers them at start; on another server register them once with
 * `temporal operator search-attribute create`.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Integration name. */
export const INTEGRATION_ATTRIBUTE = defineSearchAttributeKey('TidesyncIntegration', SearchAttributeType.KEYWORD);
/** Connector name. */
export const CONNECTOR_ATTRIBUTE = defineSearchAttributeKey('TidesyncConnector', SearchAttributeType.KEYWORD);
/** Encoded entity id. */
export const ENTITY_ID_ATTRIBUTE = defineSearchAttributeKey('TidesyncEntityId', SearchAttributeType.KEYWORD);
/**
 * Encoded ids of every entity a run exported: one for a per-entity run, many for a connector's
 * change stream, so `TidesyncEntityIds = "42"` finds every run that exported entity 42.
 */
export const ENTITY_IDS_ATTRIBUTE = defineSearchAttributeKey('TidesyncEntityIds', SearchAttributeType.KEYWORD_LIST);
/** Run status: running, completed, completed_with_failures, failed. */
export const STATUS_ATTRIBUTE = defineSearchAttributeKey('TidesyncStatus', SearchAttributeType.KEYWORD);

/** Every custom search attribute, for registration at server start. */
export const SEARCH_ATTRIBUTES = [
  INTEGRATION_ATTRIBUTE,
  CONNECTOR_ATTRIBUTE,
  ENTITY_ID_ATTRIBUTE,
  ENTITY_IDS_ATTRIBUTE,
  STATUS_ATTRIBUTE,
] as const;
