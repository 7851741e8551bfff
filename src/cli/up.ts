import { execFile } from 'node:child_process';
import type { Command } from 'commander';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ErrorCode, KedgeError } from '../common/errors.js';
import { pidAlive } from '../localcluster/processes.js';
import { checkUpPrerequisites } from '../up/prerequisites.js';
import type { Runtime, UpSession } from '../up/up.js';

const run = promisify(execFile);

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const progress = (line: string): void => say(`==> ${line}`);
const telemetry = (line: string): void => say(`telemetry  ${line}`);

function upHome(): string {
  return path.join(process.env.KEDGE_HOME ?? path.join(homedir(), '.kedge'), 'up');
}

function parseRuntime(value: string | undefined): Runtime | undefined {
  if (value === undefined || value === 'docker' || value === 'process') return value;
  throw new KedgeError(
    ErrorCode.InvalidInput,
    `--runtime must be docker or process, got "${value}"`,
  );
}

/** One `kedge up` per machine: the sample device, ports and container names are fixed. */
async function claimHome(home: string): Promise<void> {
  await mkdir(home, { recursive: true });
  const pidFile = path.join(home, 'kedge-up.pid');
  const pid = Number(await readFile(pidFile, 'utf8').catch(() => ''));
  if (pid && pid !== process.pid && pidAlive(pid))
    throw new KedgeError(
      ErrorCode.Unavailable,
      `kedge up already runs (pid ${pid}); stop it with Ctrl-C there first`,
    );
  await writeFile(pidFile, String(process.pid));
}

/**
 * Resolves on the first Ctrl-C (SIGINT) or SIGTERM. Later ones are ignored, with one line saying
 * so: an impatient second Ctrl-C must not kill the teardown halfway and leave processes and
 * containers behind.
 */
function nextInterrupt(): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    let told = false;
    const onSignal = (): void => {
      if (!stopping) {
        stopping = true;
        resolve();
      } else if (!told) {
        told = true;
        progress('already stopping; kedge up exits once everything it started is removed');
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** How the user runs this CLI: `kedge` when it is on PATH, else node and this script. */
async function kedgeCommand(): Promise<string> {
  const onPath = await run('sh', ['-c', 'command -v kedge']).then(
    () => true,
    () => false,
  );
  return onPath ? 'kedge' : `node ${fileURLToPath(new URL('./main.js', import.meta.url))}`;
}

async function printNextSteps(session: UpSession): Promise<void> {
  const { SAMPLE } = await import('../up/sample.js');
  const kedge = await kedgeCommand();
  const filterPod = session.pods.find((p) => p.containers.includes('filter'))?.name ?? '<pod>';
  const target = `${SAMPLE.namespace}/${SAMPLE.device}/filter`;
  const lines = [
    '',
    `kedge is up. Device ${SAMPLE.device} is node ${session.nodeName}; its sensor and filter modules run`,
    `with the ${session.runtime} runtime, and filtered telemetry flows to $upstream (printed below).`,
    '',
    'Try next, in another terminal:',
    ...(session.kubeconfigPath ? [`  export KUBECONFIG=${session.kubeconfigPath}`] : []),
    ...(session.embedded ? [`  export PATH=${session.kubectlDir}:$PATH`] : []),
    '  kubectl get nodes -o wide',
    '  kubectl get edgedevices,edgedeployments,routes',
    '  kubectl get pods -o wide',
    `  kubectl logs ${filterPod} -c filter -f`,
    `  kubectl exec -it ${filterPod} -c filter -- sh`,
    `  ${kedge} invoke ${target} ping '{"from":"kedge up"}'`,
    `  ${kedge} invoke ${target} setThreshold '{"threshold":28}'`,
    `  ${kedge} dashboard`,
    '',
    `Logs of the controller, the device, nats-server and the control plane: ${session.logDir}`,
    'Press Ctrl-C to stop kedge and remove everything it started.',
    '',
  ];
  for (const line of lines) say(line);
}

async function runUp(runtime: Runtime | undefined): Promise<void> {
  // A missing prerequisite is one line, before anything starts.
  checkUpPrerequisites();
  // Loaded only now, so a missing prerequisite is named before the rest of kedge (about a second
  // of module loading) and well within the 5 s a user waits for it.
  const { startUp } = await import('../up/up.js');
  const { Teardown } = await import('../up/teardown.js');
  const home = upHome();
  await claimHome(home);
  const teardown = new Teardown();
  const interrupted = nextInterrupt();
  const startup = startUp(
    { home, runtime, onProgress: progress, onTelemetry: telemetry },
    teardown,
  );
  const first = await Promise.race([
    startup.then((session) => ({ session })),
    interrupted.then(() => undefined),
  ]).catch(async (err: unknown) => {
    await teardown.run(progress);
    await rm(path.join(home, 'kedge-up.pid'), { force: true });
    progress(`start-up failed; logs are in ${path.join(home, 'logs')}`);
    throw err;
  });
  if (first) {
    await printNextSteps(first.session);
    await interrupted;
  }
  progress('stopping');
  await teardown.run(progress);
  // Start-up may still have been finishing a stage when Ctrl-C came; undo what it added.
  await startup.catch(() => undefined);
  await teardown.run(progress);
  await rm(path.join(home, 'kedge-up.pid'), { force: true });
  say('kedge up stopped; everything it started is gone.');
}

export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description(
      'Run kedge end to end on this machine: a cluster, the controller, one device and a sample deployment whose telemetry flows upstream. Ctrl-C removes it all.',
    )
    .option(
      '--runtime <runtime>',
      'module runtime of the device: docker or process (default: docker when an engine answers)',
    )
    .addHelpText(
      'after',
      [
        '',
        'Uses the cluster of $KUBECONFIG when it is set; otherwise starts a local control plane.',
        '',
        'Examples:',
        '  kedge up',
        '  KUBECONFIG=~/.kube/config kedge up --runtime process',
        '',
      ].join('\n'),
    )
    .action(async (flags: { runtime?: string }) => {
      await runUp(parseRuntime(flags.runtime));
    });
}
