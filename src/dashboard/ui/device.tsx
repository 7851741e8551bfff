import { useCallback, useEffect, useRef, useState, type ReactElement } from 'react';
import { Events, type DeviceView, type LogLines, type ModuleView } from '../protocol.js';
import { FailureBanner, Loading, PhaseBadge } from './common.js';
import { ago, apiUrl, useLive, useNow, useStream } from './live.js';

/** Lines the log tail keeps; older ones scroll away. */
const LOG_KEEP_LINES = 500;
/** The twin is read again this often while shown: twins change seldom. */
const TWIN_REFRESH_MS = 5_000;

/** One device: its state, modules, a module's twin and a module's log. */
export function DevicePage({ namespace, name }: { namespace: string; name: string }): ReactElement {
  const { data, failure } = useLive<DeviceView>(
    apiUrl('/api/device', { namespace, name }),
    Events.device,
  );
  const [selected, setSelected] = useState<string>();
  const now = useNow();
  if (failure && !data) return <FailureBanner failure={failure} />;
  if (!data) return <Loading />;
  const module = data.modules.find((m) => m.name === selected) ?? data.modules[0];
  return (
    <section>
      {failure && <FailureBanner failure={failure} />}
      <header className="device-head">
        <h2>
          <span className="muted">{data.namespace}/</span>
          {data.name}
        </h2>
        <PhaseBadge phase={data.phase} />
        <span className="muted">last seen {ago(data.lastSeen, now)}</span>
        <a href={`#/telemetry/device/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`}>
          Live telemetry
        </a>
      </header>
      <Facts device={data} />
      <h3>Modules</h3>
      <Modules modules={data.modules} selected={module?.name} onSelect={setSelected} />
      {module && (
        <div className="split">
          <Twin namespace={namespace} device={name} module={module.moduleId ?? module.name} />
          <LogTail module={module} />
        </div>
      )}
    </section>
  );
}

function Facts({ device }: { device: DeviceView }): ReactElement {
  const facts: [string, string | undefined][] = [
    ['node', device.nodeName],
    ['agent', device.agentVersion],
    ['runtime', device.runtime],
    ['platform', device.platform],
    ['connected since', device.connectedSince],
    [
      'labels',
      Object.entries(device.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(', '),
    ],
  ];
  return (
    <dl className="facts">
      {facts
        .filter(([, v]) => v)
        .map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      {device.conditions.map((c) => (
        <div key={c.type} title={c.message}>
          <dt>{c.type}</dt>
          <dd>
            {c.status}
            {c.reason ? ` (${c.reason})` : ''}
          </dd>
        </div>
      ))}
    </dl>
  );
}

function Modules(props: {
  modules: ModuleView[];
  selected?: string;
  onSelect: (name: string) => void;
}): ReactElement {
  if (props.modules.length === 0) return <p className="muted">The device reports no modules.</p>;
  return (
    <div className="table-wrap">
      <table data-testid="modules">
        <thead>
          <tr>
            <th>module</th>
            <th>status</th>
            <th>restarts</th>
            <th>image</th>
            <th>last exit</th>
          </tr>
        </thead>
        <tbody>
          {props.modules.map((m) => (
            <tr
              key={m.name}
              className={m.name === props.selected ? 'selected' : ''}
              onClick={() => props.onSelect(m.name)}
              data-testid={`module-${m.name}`}
            >
              <td>
                <button type="button" className="link">
                  {m.name}
                </button>
              </td>
              <td>
                <span className={`status status-${m.status ?? 'unknown'}`}>
                  {m.status ?? 'unknown'}
                </span>
              </td>
              <td>{m.restarts ?? 0}</td>
              <td className="image">{m.image ?? ''}</td>
              <td title={m.description}>
                {m.lastExit
                  ? `${m.lastExit}${m.exitCode !== undefined ? ` (exit ${m.exitCode})` : ''}`
                  : '—'}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Twin(props: { namespace: string; device: string; module: string }): ReactElement {
  const [twin, setTwin] = useState<string>('Loading…');
  useEffect(() => {
    let stopped = false;
    const read = async (): Promise<void> => {
      const res = await fetch(
        apiUrl('/api/twin', {
          namespace: props.namespace,
          name: props.device,
          module: props.module,
        }),
      );
      const body = (await res.json()) as { message?: string };
      if (!stopped)
        setTwin(res.ok ? JSON.stringify(body, null, 2) : (body.message ?? res.statusText));
    };
    void read();
    const timer = setInterval(() => void read(), TWIN_REFRESH_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [props.namespace, props.device, props.module]);
  return (
    <div className="panel">
      <h3>Twin of {props.module}</h3>
      <pre data-testid="twin">{twin}</pre>
    </div>
  );
}

function LogTail({ module }: { module: ModuleView }): ReactElement {
  const [lines, setLines] = useState<string[]>([]);
  const box = useRef<HTMLPreElement>(null);
  const url = module.pod
    ? apiUrl('/api/logs', {
        namespace: module.pod.namespace,
        pod: module.pod.name,
        container: module.pod.container,
      })
    : undefined;
  useEffect(() => setLines([]), [url]);
  const onLines = useCallback(
    (batch: LogLines) => setLines((old) => [...old, ...batch.lines].slice(-LOG_KEEP_LINES)),
    [],
  );
  const failure = useStream<LogLines>(url, Events.log, onLines);
  useEffect(() => {
    const el = box.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lines]);
  return (
    <div className="panel">
      <h3>Log of {module.name}</h3>
      {!module.pod && <p className="muted">No pod on this device's node runs this module.</p>}
      {failure && <FailureBanner failure={failure} />}
      <pre className="log" ref={box} data-testid="log">
        {lines.join('\n')}
      </pre>
    </div>
  );
}
