/** What a device reports about itself; it becomes the Node's capacity and nodeInfo. */
export interface DeviceFacts {
  /** Operating system, as Node's GOOS naming: `linux`. */
  os: string;
  /** CPU architecture, GOARCH naming: `amd64`, `arm64`. */
  arch: string;
  cpus: number;
  memoryBytes: number;
  /** Free plus used bytes of the data directory's filesystem. */
  diskBytes: number;
  /** Kernel release. */
  kernelVersion?: string;
  /** OS image, e.g. `Debian GNU/Linux 12 (bookworm)`. */
  osImage?: string;
  hostname?: string;
  /** `docker://24.0.7` or `process://node-20.20.2`. */
  containerRuntimeVersion: string;
  /** kedge version of `kedge node`. */
  agentVersion: string;
  /** Modules the device accepts at most. */
  maxModules?: number;
}
