/**
 * Local activities in a history: each one is a `MarkerRecorded` event named `core_local_activity`
 * whose `data` payload holds the activity type and the attempt that completed (the history keeps
 * no event per attempt).
 */
import type { temporal } from '@temporalio/proto';

/** One local activity, as its marker tells it. */
export interface LocalActivityMarker {
  readonly activityType: string;
  /** The attempt that completed (1 when it succeeded at once). */
  readonly attempt: number;
}

interface MarkerData {
  activity_type?: string;
  attempt?: number;
}

/** The local activities of `history`, in the order they were recorded. */
export function localActivityMarkers(history: temporal.api.history.v1.IHistory): LocalActivityMarker[] {
  return (history.events ?? []).flatMap((event) => {
    const marker = event.markerRecordedEventAttributes;
    const payload = marker?.markerName === 'core_local_activity' ? marker.details?.['data']?.payloads?.[0] : undefined;
    if (!payload?.data) return [];
    const data = JSON.parse(Buffer.from(payload.data).toString('utf8')) as MarkerData;
    return [{ activityType: data.activity_type ?? '', attempt: data.attempt ?? 1 }];
  });
}
