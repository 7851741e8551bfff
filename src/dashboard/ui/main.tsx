import { StrictMode, useEffect, useState, type ReactElement } from 'react';
import { createRoot } from 'react-dom/client';
import { DeploymentsPage } from './deployments.js';
import { DevicePage } from './device.js';
import { FleetPage } from './fleet.js';
import { TelemetryPage } from './telemetry.js';

/** The page routes on the URL hash, so the server serves one page for every view. */
function useHash(): string[] {
  const read = (): string[] =>
    window.location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [parts, setParts] = useState(read);
  useEffect(() => {
    const update = (): void => setParts(read());
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return parts;
}

function View({ parts }: { parts: string[] }): ReactElement {
  const [page, a, b, c] = parts;
  if (page === 'device' && a && b) return <DevicePage key={`${a}/${b}`} namespace={a} name={b} />;
  if (page === 'deployments') return <DeploymentsPage />;
  if (page === 'telemetry' && (a === 'device' || a === 'deployment') && b && c)
    return <TelemetryPage key={`${a}/${b}/${c}`} target={{ kind: a, namespace: b, name: c }} />;
  return <FleetPage />;
}

function App(): ReactElement {
  const parts = useHash();
  const page = parts[0] ?? 'fleet';
  return (
    <>
      <nav>
        <strong>kedge</strong>
        <a href="#/" className={page === 'fleet' ? 'active' : ''}>
          Fleet
        </a>
        <a href="#/deployments" className={page === 'deployments' ? 'active' : ''}>
          Deployments
        </a>
      </nav>
      <main>
        <View parts={parts} />
      </main>
    </>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
