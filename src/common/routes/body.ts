/**
 * Decoding of message bodies for `$body` queries. IoT Hub reads a JSON body only when the
 * message's `contentEncoding` names UTF-8, UTF-16 or UTF-32; kedge also accepts the byte-order
 * suffixes (`utf-16le`, `utf-32be`, …) and the spellings without a dash.
 */

/** How one Unicode encoding lays out its code units. */
interface Layout {
  /** Bytes per code unit: 1 (UTF-8), 2 (UTF-16) or 4 (UTF-32). */
  unitBytes: 1 | 2 | 4;
  /** Fixed byte order, or `undefined` when a byte-order mark decides (little-endian without one). */
  bigEndian?: boolean;
}

const LAYOUTS: ReadonlyMap<string, Layout> = new Map<string, Layout>([
  ['utf-8', { unitBytes: 1 }],
  ['utf8', { unitBytes: 1 }],
  ['utf-16', { unitBytes: 2 }],
  ['utf16', { unitBytes: 2 }],
  ['utf-16le', { unitBytes: 2, bigEndian: false }],
  ['utf16le', { unitBytes: 2, bigEndian: false }],
  ['utf-16be', { unitBytes: 2, bigEndian: true }],
  ['utf16be', { unitBytes: 2, bigEndian: true }],
  ['utf-32', { unitBytes: 4 }],
  ['utf32', { unitBytes: 4 }],
  ['utf-32le', { unitBytes: 4, bigEndian: false }],
  ['utf32le', { unitBytes: 4, bigEndian: false }],
  ['utf-32be', { unitBytes: 4, bigEndian: true }],
  ['utf32be', { unitBytes: 4, bigEndian: true }],
]);

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/** The byte-order mark, U+FEFF. */
const BOM = 0xfeff;
/** Code points per String.fromCodePoint call, well below any engine's argument limit. */
const CODE_POINT_CHUNK = 8192;
/** The largest Unicode code point. */
const MAX_CODE_POINT = 0x10ffff;

/** True when `encoding` (any case) is one of the Unicode encodings `$body` queries read. */
export function isUnicodeEncoding(encoding: string): boolean {
  return LAYOUTS.has(encoding.toLowerCase());
}

/**
 * The text of `body` in `encoding`, without a byte-order mark; `undefined` when the encoding is
 * not UTF-8/16/32 or the bytes are not valid in it (a truncated code unit, a code point past
 * U+10FFFF). Without a byte-order mark, `utf-16` and `utf-32` are little-endian, as .NET's
 * encodings of those names (which IoT Hub and edgeHub use) are.
 */
export function decodeBody(body: Buffer, encoding: string): string | undefined {
  const layout = LAYOUTS.get(encoding.toLowerCase());
  if (!layout) return undefined;
  if (layout.unitBytes === 1) {
    const start = body.subarray(0, UTF8_BOM.length).equals(UTF8_BOM) ? UTF8_BOM.length : 0;
    return body.subarray(start).toString('utf8');
  }
  if (body.length % layout.unitBytes !== 0) return undefined;
  const { bigEndian, bomBytes } = byteOrder(body, layout);
  const units = body.subarray(bomBytes);
  return layout.unitBytes === 2 ? decodeUtf16(units, bigEndian) : decodeUtf32(units, bigEndian);
}

/** The byte order to read with, and how many leading bytes are a byte-order mark. */
function byteOrder(body: Buffer, layout: Layout): { bigEndian: boolean; bomBytes: number } {
  const n = layout.unitBytes as 2 | 4;
  const isBom = (bigEndian: boolean): boolean => readUnit(body, n, bigEndian) === BOM;
  if (layout.bigEndian !== undefined)
    return { bigEndian: layout.bigEndian, bomBytes: isBom(layout.bigEndian) ? n : 0 };
  if (isBom(true)) return { bigEndian: true, bomBytes: n };
  return { bigEndian: false, bomBytes: isBom(false) ? n : 0 };
}

/** The first code unit of `body`, or -1 when it is shorter than one unit. */
function readUnit(body: Buffer, bytes: 2 | 4, bigEndian: boolean): number {
  if (body.length < bytes) return -1;
  if (bytes === 2) return bigEndian ? body.readUInt16BE(0) : body.readUInt16LE(0);
  return bigEndian ? body.readUInt32BE(0) : body.readUInt32LE(0);
}

function decodeUtf16(units: Buffer, bigEndian: boolean): string {
  if (!bigEndian) return units.toString('utf16le');
  const swapped = Buffer.from(units);
  swapped.swap16();
  return swapped.toString('utf16le');
}

function decodeUtf32(units: Buffer, bigEndian: boolean): string | undefined {
  const points: number[] = [];
  for (let offset = 0; offset < units.length; offset += 4) {
    const point = bigEndian ? units.readUInt32BE(offset) : units.readUInt32LE(offset);
    if (point > MAX_CODE_POINT || isSurrogate(point)) return undefined;
    points.push(point);
  }
  let text = '';
  for (let i = 0; i < points.length; i += CODE_POINT_CHUNK)
    text += String.fromCodePoint(...points.slice(i, i + CODE_POINT_CHUNK));
  return text;
}

/** UTF-16 surrogates are not code points of their own and never valid in UTF-32. */
function isSurrogate(point: number): boolean {
  return point >= 0xd800 && point <= 0xdfff;
}
