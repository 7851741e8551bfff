/** Small pure helpers for the Docker runtime. */

/** Docker's default registry host for references without one. */
const DOCKER_HUB = 'docker.io';
/** Docker's multiplexed log frame header: stream type (1 byte), 3 zero bytes, length (4 bytes). */
const FRAME_HEADER_BYTES = 8;

/**
 * The registry host of an image reference, as Docker decides it: the first path segment when it
 * looks like a host (has `.` or `:`, or is `localhost`), else Docker Hub. Lower case, without
 * scheme, so it can be compared with a credential's `address`.
 */
export function registryOf(image: string): string {
  const ref = image.replace(/^[a-z]+:\/\//i, '');
  const slash = ref.indexOf('/');
  if (slash < 0) return DOCKER_HUB;
  const first = ref.slice(0, slash).toLowerCase();
  const isHost = first.includes('.') || first.includes(':') || first === 'localhost';
  if (!isHost) return DOCKER_HUB;
  return first === 'index.docker.io' || first === 'registry-1.docker.io' ? DOCKER_HUB : first;
}

/** Joins the payloads of Docker's multiplexed log frames (stdout and stderr interleaved). */
export function demuxFrames(buffer: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + FRAME_HEADER_BYTES <= buffer.length) {
    const length = buffer.readUInt32BE(offset + 4);
    const start = offset + FRAME_HEADER_BYTES;
    parts.push(buffer.subarray(start, start + length));
    offset = start + length;
  }
  return Buffer.concat(parts);
}
