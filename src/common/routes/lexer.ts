/**
 * Tokenizer for the IoT Edge route and condition language (after edgeHub's GrammarLexer.g4).
 * Keywords are case-insensitive; literals `true false null undefined` are lower case.
 * Differences from the ANTLR lexer, chosen for predictability: `-` is always an operator (so
 * `5 -3` parses), and identifiers are `[A-Za-z_][A-Za-z0-9_.-]*`.
 */
import { RouteSyntaxError } from './errors.js';

export type TokenKind =
  'keyword' | 'id' | 'sysprop' | 'string' | 'number' | 'literal' | 'op' | 'path' | 'eof';

/** One token and where it starts. */
export interface Token {
  kind: TokenKind;
  /** Keywords upper-cased; strings unescaped; everything else as written. */
  text: string;
  pos: number;
  /** Parsed value for number tokens. */
  num?: number;
}

const KEYWORDS = new Set(['SELECT', 'FROM', 'WHERE', 'INTO', 'AND', 'OR', 'NOT']);
const LITERALS = new Set(['true', 'false', 'null', 'undefined']);
/** Longest operators first so `<=` wins over `<`. */
const OPERATORS = [
  '<>',
  '<=',
  '>=',
  '!=',
  '||',
  '??',
  '(',
  ')',
  ',',
  '+',
  '-',
  '*',
  '/',
  '%',
  '=',
  '<',
  '>',
  '{',
  '}',
];
const ID_START = /[A-Za-z_]/;
const ID_PART = /[A-Za-z0-9_.-]/;
/** After `$`: anything but the ANTLR QUERY_PATH exclusions. */
const SYSPROP_PART = /[^()<>@,;:\\"/?={}\s'!|+*%&]/;
const NUMBER = /^(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/;

function readString(text: string, start: number): { value: string; end: number } {
  const quote = text[start]!;
  let value = '';
  let i = start + 1;
  while (i < text.length) {
    const c = text[i]!;
    if (c === quote) return { value, end: i + 1 };
    if (c !== '\\') {
      value += c;
      i += 1;
      continue;
    }
    const next = text[i + 1];
    if (next === '"' || next === "'" || next === '\\') {
      value += next;
      i += 2;
    } else if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
      value += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
      i += 6;
    } else {
      throw new RouteSyntaxError('invalid escape sequence in string', i);
    }
  }
  throw new RouteSyntaxError('unterminated string', start);
}

function skipSpaceAndComments(text: string, start: number): number {
  let i = start;
  for (;;) {
    while (i < text.length && /\s/.test(text[i]!)) i += 1;
    // As in the ANTLR lexer, `/*` opens a comment only when a `*/` closes it.
    const end = text.startsWith('/*', i) ? text.indexOf('*/', i + 2) : -1;
    if (end < 0) return i;
    i = end + 2;
  }
}

function readWhile(text: string, start: number, part: RegExp): number {
  let i = start;
  while (i < text.length && part.test(text[i]!)) i += 1;
  return i;
}

function wordToken(word: string, pos: number): Token {
  const upper = word.toUpperCase();
  if (KEYWORDS.has(upper)) return { kind: 'keyword', text: upper, pos };
  if (LITERALS.has(word)) return { kind: 'literal', text: word, pos };
  return { kind: 'id', text: word, pos };
}

function nextToken(text: string, i: number): Token {
  const c = text[i]!;
  if (c === '"' || c === "'") {
    const { value } = readString(text, i);
    return { kind: 'string', text: value, pos: i };
  }
  if (c === '$') {
    const end = readWhile(text, i + 1, SYSPROP_PART);
    if (end === i + 1) throw new RouteSyntaxError('expected a property name after $', i);
    return { kind: 'sysprop', text: text.slice(i + 1, end), pos: i };
  }
  const num = /[0-9.]/.test(c) ? NUMBER.exec(text.slice(i)) : null;
  if (num) {
    const raw = num[0];
    const value = /^0[xX]/.test(raw) ? parseInt(raw, 16) : Number(raw);
    return { kind: 'number', text: raw, pos: i, num: value };
  }
  if (ID_START.test(c)) return wordToken(text.slice(i, readWhile(text, i + 1, ID_PART)), i);
  const op = OPERATORS.find((o) => text.startsWith(o, i));
  if (op) return { kind: 'op', text: op, pos: i };
  throw new RouteSyntaxError(`unexpected character '${c}'`, i);
}

function tokenLength(text: string, token: Token): number {
  if (token.kind === 'path') return token.text.length;
  if (token.kind === 'string') return readString(text, token.pos).end - token.pos;
  if (token.kind === 'sysprop') return token.text.length + 1;
  return token.text.length;
}

/** Splits `text` into tokens, ending with an `eof` token. Throws {@link RouteSyntaxError}. */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = skipSpaceAndComments(text, 0);
  while (i < text.length) {
    const token = nextToken(text, i);
    tokens.push(token);
    i += tokenLength(text, token);
    if (token.kind === 'keyword' && token.text === 'FROM') {
      // The source is a raw path (`/messages/*` must not open a comment).
      i = readWhile(text, i, /\s/);
      const end = readWhile(text, i, /\S/);
      if (end > i) tokens.push({ kind: 'path', text: text.slice(i, end), pos: i });
      i = end;
    }
    i = skipSpaceAndComments(text, i);
  }
  tokens.push({ kind: 'eof', text: '', pos: text.length });
  return tokens;
}
