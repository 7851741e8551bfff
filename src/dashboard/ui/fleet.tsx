import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useMemo, useRef, useState, type ReactElement } from 'react';
import { Events, type FleetRow, type FleetView, type Phase } from '../protocol.js';
import { FailureBanner, Loading, PhaseBadge } from './common.js';
import { ago, apiUrl, useLive, useNow } from './live.js';

/** Row height in pixels: the virtual list positions rows by it. */
const ROW_PX = 44;
/** Rows rendered beyond the visible ones, so fast scrolling shows no gaps. */
const OVERSCAN_ROWS = 12;

type Item = { kind: 'group'; value: string; text: string } | { kind: 'row'; row: FleetRow };

/** Typing pauses this long before the filter goes to the server. */
const TYPING_PAUSE_MS = 300;

/** `value` once it has stopped changing, so typing opens one stream, not one per key stroke. */
function useSettled(value: string): string {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), TYPING_PAUSE_MS);
    return () => clearTimeout(timer);
  }, [value]);
  return settled;
}

/** The fleet: counts, filters, and every matching device in one virtualized list. */
export function FleetPage(): ReactElement {
  const [search, setSearch] = useState('');
  const [phase, setPhase] = useState<Phase | ''>('');
  const [groupBy, setGroupBy] = useState('');
  const query = useSettled(search);
  const { data, failure } = useLive<FleetView>(
    apiUrl('/api/fleet', { search: query, phase, groupBy }),
    Events.fleet,
  );
  if (failure && !data) return <FailureBanner failure={failure} />;
  if (!data) return <Loading />;
  return (
    <section>
      {failure && <FailureBanner failure={failure} />}
      <Counts view={data} />
      <div className="filters">
        <input
          type="search"
          placeholder="Filter by namespace/name"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
          aria-label="Filter devices"
        />
        <select
          value={phase}
          onChange={(e) => setPhase(e.target.value as Phase | '')}
          aria-label="Phase"
        >
          <option value="">All phases</option>
          <option value="Connected">Connected</option>
          <option value="Disconnected">Disconnected</option>
          <option value="Pending">Pending</option>
        </select>
        <select value={groupBy} onChange={(e) => setGroupBy(e.target.value)} aria-label="Group by">
          <option value="">No grouping</option>
          {data.labelKeys.map((k) => (
            <option key={k} value={k}>
              Group by {k}
            </option>
          ))}
        </select>
      </div>
      <DeviceList view={data} groupBy={groupBy} />
    </section>
  );
}

function Counts({ view }: { view: FleetView }): ReactElement {
  return (
    <div className="counts">
      <span>
        {view.total} {view.total === 1 ? 'device' : 'devices'}
      </span>
      <span className="ok">{view.counts.Connected} connected</span>
      <span className="bad">{view.counts.Disconnected} disconnected</span>
      <span className="muted">{view.counts.Pending} pending</span>
    </div>
  );
}

function items(view: FleetView, groupBy: string): Item[] {
  if (!groupBy) return view.rows.map((row) => ({ kind: 'row', row }));
  const out: Item[] = [];
  let group: string | undefined;
  const counts = new Map(view.groups.map((g) => [g.value, g.counts]));
  for (const row of view.rows) {
    if (row.group !== group) {
      group = row.group;
      const c = counts.get(group);
      const label = group ? `${groupBy}=${group}` : `no ${groupBy} label`;
      out.push({
        kind: 'group',
        value: group,
        text: `${label} · ${c?.Connected ?? 0} connected, ${c?.Disconnected ?? 0} disconnected${
          c?.Pending ? `, ${c.Pending} pending` : ''
        }`,
      });
    }
    out.push({ kind: 'row', row });
  }
  return out;
}

function DeviceList({ view, groupBy }: { view: FleetView; groupBy: string }): ReactElement {
  const list = useMemo(() => items(view, groupBy), [view, groupBy]);
  const scroller = useRef<HTMLDivElement>(null);
  const now = useNow();
  const virtual = useVirtualizer({
    count: list.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_PX,
    overscan: OVERSCAN_ROWS,
  });
  if (list.length === 0) return <p className="muted">No devices match.</p>;
  return (
    <div className="scroller" ref={scroller} data-testid="fleet-list">
      <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
        {virtual.getVirtualItems().map((v) => {
          const item = list[v.index]!;
          const style = { height: ROW_PX, transform: `translateY(${v.start}px)` };
          if (item.kind === 'group')
            return (
              <div key={`g/${item.value}`} className="vrow group" style={style}>
                {item.text}
              </div>
            );
          const { row } = item;
          return (
            <a
              key={`${row.namespace}/${row.name}`}
              className="vrow device"
              style={style}
              href={`#/device/${encodeURIComponent(row.namespace)}/${encodeURIComponent(row.name)}`}
              data-testid={`device-${row.namespace}/${row.name}`}
            >
              <PhaseBadge phase={row.phase} />
              <span className="name">
                <span className="muted">{row.namespace}/</span>
                {row.name}
              </span>
              <span className="modules">{row.modules ?? ''}</span>
              <span className="seen muted">{ago(row.lastSeen, now)}</span>
            </a>
          );
        })}
      </div>
    </div>
  );
}
