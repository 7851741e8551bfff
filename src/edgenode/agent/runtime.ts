import type { Readable, Writable } from 'node:stream';
import type { ImagePullPolicy, RegistryCredential } from '../../common/manifest/index.js';
import { ErrorCode, KedgeError } from '../../common/errors.js';
import type {
  InstanceUsage,
  LogOptions,
  ModuleSpec,
  ObservedModule,
  RuntimeInfo,
  StatusReason,
} from './types.js';

/** How to get a module's image onto the device. */
export interface PullRequest {
  policy: ImagePullPolicy;
  /** The manifest's registry credentials; the one whose address matches the image is used. */
  credentials: readonly RegistryCredential[];
  /** Called once a pull really begins (not when the image is present and nothing is pulled). */
  onPulling?: () => void;
}

/** A command to run in a module (`kubectl exec`), or how to attach to it. */
export interface ExecRequest {
  /** exec: argv; attach: empty. */
  command: string[];
  stdin: boolean;
  tty: boolean;
}

/** A command, attachment or connection inside a running module. */
export interface ModuleSession {
  /** Input, when asked for; ending it is end of input. */
  stdin?: Writable;
  stdout: Readable;
  /** Absent with a TTY, which has one output stream. */
  stderr?: Readable;
  /** Resizes the TTY. */
  resize?(width: number, height: number): Promise<void>;
  /** Settles once the session is over and its output ended: the exit code, if there is one. */
  done: Promise<number | undefined>;
  /** Ends the session now: kills the command, or drops the connection. */
  kill(): void;
}

/**
 * What runs modules: containers (`docker`) or local processes (`process`). Every method is
 * idempotent where it can be (stopping a stopped module or removing a removed one succeeds), and
 * failures are {@link RuntimeError}s.
 */
export interface ModuleRuntime {
  readonly name: 'docker' | 'process';
  /** Creates what the runtime needs once (the bridge network, the state directory). */
  prepare(): Promise<void>;
  /** Runtime name and version, for the device report. */
  info(): Promise<RuntimeInfo>;
  /** Every module instance this agent owns, whatever its state. */
  list(): Promise<ObservedModule[]>;
  /**
   * Makes the module's image available: pulls it when missing and allowed, and always with the
   * `always` policy (keeping the local image, with a warning, when that pull fails).
   */
  ensureImage(spec: ModuleSpec, pull: PullRequest): Promise<void>;
  /** The id of the image a reference names on this device now; absent where images do not exist. */
  imageId?(image: string): Promise<string | undefined>;
  /** Creates an instance without starting it and returns its id. */
  create(spec: ModuleSpec): Promise<string>;
  start(id: string): Promise<void>;
  /** Stops gracefully: SIGTERM, then SIGKILL after `graceMs`. */
  stop(id: string, graceMs: number): Promise<void>;
  remove(id: string): Promise<void>;
  /** The module's output as a text stream (stdout and stderr interleaved). */
  logs(id: string, options: LogOptions): Promise<Readable>;
  /** Runs a command in a running instance. */
  exec?(id: string, request: ExecRequest): Promise<ModuleSession>;
  /** Attaches to a running instance's own input and output. */
  attach?(id: string, request: ExecRequest): Promise<ModuleSession>;
  /** The address to dial a running instance's TCP ports on, from the device. */
  portAddress?(id: string): Promise<string>;
  /**
   * CPU and memory of the given running instances, by id. An instance it cannot read (gone
   * meanwhile) is left out; it never throws for one instance.
   */
  usage?(ids: readonly string[]): Promise<Map<string, InstanceUsage>>;
  /** Calls `onChange` whenever an instance may have changed state; returns the unsubscribe. */
  watch(onChange: () => void): () => void;
  /**
   * A string that changes when the host boots or the engine restarts (both stop every module);
   * undefined or absent when the runtime cannot tell.
   */
  engineEpoch?(): Promise<string | undefined>;
  /** A string that changes when runtime settings that shape every instance change. */
  readonly configSalt: string;
}

/** A runtime failure, with the reason to report and whether retrying can help. */
export class RuntimeError extends KedgeError {
  readonly reason: StatusReason;
  /** True when the runtime rejected the request itself (bad options): retrying cannot help. */
  readonly terminal: boolean;

  constructor(
    reason: StatusReason,
    message: string,
    options: { terminal: boolean; cause?: unknown; code?: ErrorCode },
  ) {
    super(options.code ?? ErrorCode.Runtime, message, { cause: options.cause });
    this.name = 'RuntimeError';
    this.reason = reason;
    this.terminal = options.terminal;
  }
}
