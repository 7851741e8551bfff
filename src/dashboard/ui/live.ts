import { useEffect, useState } from 'react';
import { Events, type Failure } from '../protocol.js';

/** The latest value of one server-sent event on `url`, or why the server could not send it. */
export interface Live<T> {
  data?: T;
  failure?: Failure;
}

/**
 * Follows `url` (an EventSource) and keeps the latest `event`. A new URL (a changed filter)
 * closes the old stream; the browser reconnects a dropped one on its own.
 */
export function useLive<T>(url: string | undefined, event: string): Live<T> {
  const [live, setLive] = useState<Live<T>>({});
  useEffect(() => {
    if (!url) return undefined;
    const source = new EventSource(url);
    source.addEventListener(event, (e) =>
      setLive({ data: JSON.parse((e as MessageEvent<string>).data) as T }),
    );
    source.addEventListener(Events.failure, (e) =>
      setLive((old) => ({
        ...old,
        failure: JSON.parse((e as MessageEvent<string>).data) as Failure,
      })),
    );
    return () => source.close();
  }, [url, event]);
  return live;
}

/** Calls `onEvent` for every `event` on `url`, for streams that append (logs, telemetry). */
export function useStream<T>(
  url: string | undefined,
  event: string,
  onEvent: (data: T) => void,
): Failure | undefined {
  const [failure, setFailure] = useState<Failure>();
  useEffect(() => {
    if (!url) return undefined;
    setFailure(undefined);
    const source = new EventSource(url);
    source.addEventListener(event, (e) => {
      setFailure(undefined);
      onEvent(JSON.parse((e as MessageEvent<string>).data) as T);
    });
    source.addEventListener(Events.failure, (e) =>
      setFailure(JSON.parse((e as MessageEvent<string>).data) as Failure),
    );
    return () => source.close();
  }, [url, event, onEvent]);
  return failure;
}

/** The current time, ticking once a second, for "12 s ago". */
export function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

/** "5 s ago", "3 min ago", "2 h ago", "4 d ago". */
export function ago(iso: string | undefined, now: number): string {
  if (!iso) return 'never';
  const secs = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (secs < 60) return `${secs} s ago`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.floor(secs / 3600)} h ago`;
  return `${Math.floor(secs / 86400)} d ago`;
}

/** Builds an API URL with query parameters, leaving out empty ones. */
export function apiUrl(path: string, params: Record<string, string | undefined>): string {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) query.set(k, v);
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}
