import { useCallback, useEffect, useRef, useState, type ReactElement } from 'react';
import uPlot from 'uplot';
import { Events, type TelemetryBatch, type TelemetryPoint } from '../protocol.js';
import { FailureBanner } from './common.js';
import { apiUrl, useStream } from './live.js';

/** The charts show this much: the server's first answer fills the same window. */
const WINDOW_MS = 5 * 60_000;
const CHART_HEIGHT_PX = 180;
/** Series colours, one per device or module, chosen to stay apart on light and dark. */
const COLOURS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#be185d'];

/** What the telemetry page follows: one device, or the devices of a deployment. */
export interface TelemetryTarget {
  kind: 'device' | 'deployment';
  namespace: string;
  name: string;
}

/** A chart per numeric telemetry field over the last minutes, live, with pause. */
export function TelemetryPage({ target }: { target: TelemetryTarget }): ReactElement {
  const points = useRef<TelemetryPoint[]>([]);
  const [devices, setDevices] = useState<string[]>([]);
  const [paused, setPaused] = useState(false);
  const [version, setVersion] = useState(0);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  const url = apiUrl('/api/telemetry', { namespace: target.namespace, [target.kind]: target.name });
  useEffect(() => {
    points.current = [];
    setVersion((v) => v + 1);
  }, [url]);
  const onBatch = useCallback((batch: TelemetryBatch) => {
    const cutoff = Date.now() - WINDOW_MS;
    points.current = [...points.current, ...batch.points].filter((p) => p.t >= cutoff);
    setDevices(batch.devices);
    if (!pausedRef.current) setVersion((v) => v + 1);
  }, []);
  const failure = useStream<TelemetryBatch>(url, Events.telemetry, onBatch);
  const [shown, setShown] = useState<TelemetryPoint[]>([]);
  useEffect(() => setShown(points.current), [version]);
  const fields = [...new Set(shown.flatMap((p) => Object.keys(p.values)))].sort();
  return (
    <section>
      <header className="device-head">
        <h2>
          Telemetry of {target.kind} <span className="muted">{target.namespace}/</span>
          {target.name}
        </h2>
        <button type="button" onClick={() => setPaused(!paused)} data-testid="pause">
          {paused ? 'Resume' : 'Pause'}
        </button>
        <span className="muted">
          last {WINDOW_MS / 60_000} minutes · {shown.length} messages
          {target.kind === 'deployment' ? ` · devices: ${devices.join(', ') || 'none'}` : ''}
        </span>
      </header>
      {failure && <FailureBanner failure={failure} />}
      {fields.length === 0 && !failure && (
        <p className="muted">Waiting for telemetry with numeric fields…</p>
      )}
      <div className="charts">
        {fields.map((f) => (
          <Chart key={f} field={f} points={shown} />
        ))}
      </div>
    </section>
  );
}

/** Each source (device, or device/module) is a series; x is the union of their times. */
function seriesData(
  field: string,
  points: TelemetryPoint[],
): { sources: string[]; data: uPlot.AlignedData } {
  const sources = [...new Set(points.filter((p) => field in p.values).map(sourceOf))].sort();
  const rows = points.filter((p) => field in p.values).sort((a, b) => a.t - b.t);
  const xs = rows.map((p) => p.t / 1000);
  const columns = sources.map((s) =>
    rows.map((p) => (sourceOf(p) === s ? p.values[field]! : null)),
  );
  return { sources, data: [xs, ...columns] };
}

function sourceOf(p: TelemetryPoint): string {
  return p.module ? `${p.device}/${p.module}` : p.device;
}

function Chart({ field, points }: { field: string; points: TelemetryPoint[] }): ReactElement {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot>(undefined);
  const { sources, data } = seriesData(field, points);
  const key = sources.join(',');
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const chart = new uPlot(
      {
        width: el.clientWidth,
        height: CHART_HEIGHT_PX,
        series: [
          {},
          ...sources.map((s, i) => ({
            label: s,
            stroke: COLOURS[i % COLOURS.length],
            spanGaps: true,
            points: { show: false },
          })),
        ],
        axes: [{}, { size: 60 }],
        legend: { show: true },
      },
      data,
      el,
    );
    plot.current = chart;
    const resize = new ResizeObserver(() =>
      chart.setSize({ width: el.clientWidth, height: CHART_HEIGHT_PX }),
    );
    resize.observe(el);
    return () => {
      resize.disconnect();
      chart.destroy();
    };
    // The chart is rebuilt only when its series change; new points go through setData.
  }, [key]);
  useEffect(() => plot.current?.setData(data), [data]);
  return (
    <figure className="chart" data-testid={`chart-${field}`} data-points={data[0].length}>
      <figcaption>{field}</figcaption>
      <div ref={box} />
    </figure>
  );
}
