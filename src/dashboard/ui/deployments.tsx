import type { ReactElement } from 'react';
import { Events, type DeploymentView } from '../protocol.js';
import { FailureBanner, Loading } from './common.js';
import { useLive } from './live.js';

/** Every EdgeDeployment's rollout counts, and the devices failing it with their reasons. */
export function DeploymentsPage(): ReactElement {
  const { data, failure } = useLive<DeploymentView[]>('/api/deployments', Events.deployments);
  if (failure && !data) return <FailureBanner failure={failure} />;
  if (!data) return <Loading />;
  if (data.length === 0) return <p className="muted">No EdgeDeployments.</p>;
  return (
    <section className="cards">
      {failure && <FailureBanner failure={failure} />}
      {data.map((d) => (
        <Deployment key={`${d.namespace}/${d.name}`} d={d} />
      ))}
    </section>
  );
}

function Deployment({ d }: { d: DeploymentView }): ReactElement {
  return (
    <article className="card" data-testid={`deployment-${d.namespace}/${d.name}`}>
      <header>
        <h3>
          <span className="muted">{d.namespace}/</span>
          {d.name}
        </h3>
        <span className="muted">priority {d.priority}</span>
      </header>
      <dl className="stats">
        <div>
          <dt>targeted</dt>
          <dd>{d.targeted}</dd>
        </div>
        <div>
          <dt>applied</dt>
          <dd>{d.applied}</dd>
        </div>
        <div>
          <dt>successful</dt>
          <dd className="ok">{d.successful}</dd>
        </div>
        <div>
          <dt>failed</dt>
          <dd className={d.failed ? 'bad' : ''}>{d.failed}</dd>
        </div>
      </dl>
      {d.ready && d.ready.status !== 'True' && (
        <p className="muted">
          Not ready: {d.ready.reason} {d.ready.message}
        </p>
      )}
      {d.failing.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>failing device</th>
              <th>module</th>
              <th>why</th>
            </tr>
          </thead>
          <tbody>
            {d.failing.map((f) => (
              <tr key={`${f.device}/${f.module ?? ''}`}>
                <td>
                  <a
                    href={`#/device/${encodeURIComponent(d.namespace)}/${encodeURIComponent(f.device)}`}
                  >
                    {f.device}
                  </a>
                </td>
                <td>{f.module ?? ''}</td>
                <td>{[f.reason, f.message].filter(Boolean).join(': ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <a
        href={`#/telemetry/deployment/${encodeURIComponent(d.namespace)}/${encodeURIComponent(d.name)}`}
      >
        Live telemetry
      </a>
    </article>
  );
}
