// Memory readings for tests that check a process stays bounded under load.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** The collector, exposed at run time (jest's node flags cannot carry --expose-gc). */
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** This process's resident set, MB. */
export function rssMb(): number {
  return Math.round(process.memoryUsage().rss / 1024 / 1024);
}

/** JavaScript heap plus external memory (Buffers) still referenced after a full collection, MB. */
export function liveMb(): number {
  collectGarbage();
  const { heapUsed, external } = process.memoryUsage();
  return Math.round((heapUsed + external) / 1024 / 1024);
}
