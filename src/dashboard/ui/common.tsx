import type { ReactElement } from 'react';
import type { Failure, Phase } from '../protocol.js';

/** A coloured phase badge. */
export function PhaseBadge({ phase }: { phase: Phase | undefined }): ReactElement {
  const value = phase ?? 'Unknown';
  return (
    <span className={`badge badge-${value.toLowerCase()}`} data-testid="phase">
      {value}
    </span>
  );
}

/** Why a view cannot be shown: a denial is said plainly, never left as a blank page. */
export function FailureBanner({ failure }: { failure: Failure }): ReactElement {
  const title =
    failure.status === 403
      ? 'Not allowed'
      : failure.status === 404
        ? 'Not found'
        : `Cannot read the cluster (${failure.status})`;
  return (
    <div className="failure" role="alert" data-testid="failure">
      <strong>{title}</strong>
      <p>{failure.message}</p>
    </div>
  );
}

export function Loading(): ReactElement {
  return <p className="muted">Loading…</p>;
}
