/**
 * tidesync's own metrics, recorded through the Temporal SDK's metric meter so they leave the
 * worker through the runtime's telemetry (Prometheus) beside the SDK's own. Without telemetry
 * configured the meter records nothing, at no cost.
 */
import type { MetricCounter, MetricGauge, MetricHistogram, MetricMeter } from '@temporalio/common';

/** Every metric tidesync records (names as Prometheus shows them, see the README). */
export interface TidesyncMetrics {
  /** Export passes by integration, connector and outcome (completed, completed_with_failures, failed). */
  readonly exports: MetricCounter;
  /** Records by integration, connector and outcome (written, skipped, failed). */
  readonly records: MetricCounter;
  /** Time of each remote write call, in milliseconds, by integration and connector. */
  readonly remoteWriteMs: MetricHistogram;
  /** Activity attempts after the first, by activity, integration and connector. */
  readonly retries: MetricCounter;
  /** Pending outbox rows (the backlog). */
  readonly outboxPending: MetricGauge;
  /** Age of the oldest pending outbox row, in seconds (the lag). */
  readonly outboxOldestSeconds: MetricGauge;
  /** Entities whose last export failed for good, by integration and connector. */
  readonly failedRecords: MetricGauge;
  /** 1 while an integration's circuit breaker is open (`degraded`), 0 while it is healthy. */
  readonly breakerDegraded: MetricGauge;
  /** How long remote calls waited for their integration's rate limits, in milliseconds, by integration. */
  readonly rateLimitWaitMs: MetricHistogram;
  /** 429s the remote answered (each pauses the integration for every worker), by integration. */
  readonly remoteThrottled: MetricCounter;
}

/** Creates tidesync's metrics on `meter` (the runtime's: `Runtime.instance().metricMeter`). */
export function createMetrics(meter: MetricMeter): TidesyncMetrics {
  return {
    exports: meter.createCounter('tidesync_exports', 'passes', 'export passes by integration, connector and outcome'),
    records: meter.createCounter('tidesync_records', 'records', 'records by integration, connector and outcome'),
    remoteWriteMs: meter.createHistogram('tidesync_remote_write_latency', 'int', 'ms', 'remote write calls'),
    retries: meter.createCounter('tidesync_activity_retries', 'attempts', 'activity attempts after the first'),
    outboxPending: meter.createGauge('tidesync_outbox_pending_rows', 'int', 'rows', 'pending outbox rows'),
    outboxOldestSeconds: meter.createGauge('tidesync_outbox_oldest_pending_age', 'float', 's', 'age of the oldest pending outbox row'),
    failedRecords: meter.createGauge('tidesync_failed_records', 'int', 'records', 'entities whose last export failed'),
    breakerDegraded: meter.createGauge('tidesync_breaker_degraded', 'int', '1', "1 while the integration's breaker is open"),
    rateLimitWaitMs: meter.createHistogram('tidesync_rate_limit_wait', 'int', 'ms', 'time remote calls waited for the rate limits'),
    remoteThrottled: meter.createCounter('tidesync_remote_throttled', 'responses', '429s that paused the integration'),
  };
}
