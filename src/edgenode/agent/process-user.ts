/**
 * The user the process runtime runs modules as. kedge runs as root to drive the engine and bind
 * 443; modules do not need that, so by default they run as `nobody`.
 */
import { readFileSync } from 'node:fs';
import { ErrorCode, KedgeError } from '../../common/errors.js';

/** Modules run as this user unless `agent.processUser` says otherwise. */
export const DEFAULT_PROCESS_USER = 'nobody';
/** The explicit opt-out: modules keep kedge's own user (development only). */
export const SAME_USER_AS_KEDGE = 'root';

/** Numeric ids to spawn with. */
export interface ProcessUser {
  uid: number;
  gid: number;
}

const PASSWD_FILE = '/etc/passwd';
const NUMERIC = /^\d+(?::\d+)?$/;

/** `name:x:uid:gid:...` lines of /etc/passwd. */
function lookup(name: string, passwd: string): ProcessUser | undefined {
  for (const line of passwd.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && uid !== undefined && gid !== undefined)
      return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

/**
 * Resolves `agent.processUser` (a user name, `uid` or `uid:gid`) to ids. Undefined when modules
 * keep kedge's user: `root` was asked for, or kedge is not root and cannot switch.
 * @throws KedgeError InvalidConfig when the user does not exist.
 */
export function resolveProcessUser(
  spec: string,
  passwdFile = PASSWD_FILE,
): ProcessUser | undefined {
  if (spec === SAME_USER_AS_KEDGE || process.getuid?.() !== 0) return undefined;
  if (NUMERIC.test(spec)) {
    const [uid, gid = uid] = spec.split(':').map(Number);
    return { uid: uid!, gid: gid! };
  }
  const passwd = (() => {
    try {
      return readFileSync(passwdFile, 'utf8');
    } catch {
      return '';
    }
  })();
  const found = lookup(spec, passwd);
  if (!found)
    throw new KedgeError(
      ErrorCode.InvalidConfig,
      `agent.processUser: no user ${spec} in ${passwdFile} (give a name, uid or uid:gid; root keeps kedge's user)`,
    );
  return found;
}
