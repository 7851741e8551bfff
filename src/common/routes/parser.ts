/**
 * Recursive-descent parser for IoT Edge routes and the IoT Hub routing condition language, after
 * edgeHub's Route.g4 / Condition.g4. Precedence, loosest first: `??`, OR, AND, `= != <>`,
 * `< <= > >=`, `+ - ||`, `* / %`, prefix `-` and NOT. Every failure is a {@link RouteSyntaxError}.
 */
import type { BinaryOp, Expr, RouteAst, Sink } from './ast.js';
import { BUILTINS } from './builtins.js';
import { RouteSyntaxError } from './errors.js';
import { tokenize, type Token } from './lexer.js';

/** Binary operator levels, loosest first. */
const LEVELS: readonly (readonly string[])[] = [
  ['??'],
  ['OR'],
  ['AND'],
  ['=', '!=', '<>'],
  ['<', '<=', '>', '>='],
  ['+', '-', '||'],
  ['*', '/', '%'],
];
const SOURCE_PATH = /^(?:\/(?:\*|[A-Za-z0-9_.$-]+))+\/?$/;
const BODY_PATH = /^body(?:\.[A-Za-z_][A-Za-z0-9_-]*(?:\[\d+\])?)+$/;
const BROKERED = /^\/?modules\/([A-Za-z0-9_.-]+)\/inputs\/([A-Za-z0-9_.-]+)\/?$/;
/** Nesting bound: deep enough for any real route, shallow enough to never overflow the stack. */
const MAX_DEPTH = 200;

class Parser {
  #tokens: Token[];
  #i = 0;
  #depth = 0;

  constructor(text: string) {
    this.#tokens = tokenize(text);
  }

  get peek(): Token {
    return this.#tokens[this.#i]!;
  }

  next(): Token {
    const t = this.peek;
    if (t.kind !== 'eof') this.#i += 1;
    return t;
  }

  isOp(text: string): boolean {
    const t = this.peek;
    return (t.kind === 'op' || t.kind === 'keyword') && t.text === text;
  }

  expect(text: string, what = `'${text}'`): Token {
    if (!this.isOp(text)) throw this.error(`expected ${what}`);
    return this.next();
  }

  error(message: string, token: Token = this.peek): RouteSyntaxError {
    const found = token.kind === 'eof' ? 'end of route' : `'${token.text}'`;
    return new RouteSyntaxError(`${message}, found ${found}`, token.pos);
  }

  route(): RouteAst {
    if (this.isOp('SELECT')) {
      this.next();
      this.expect('*');
    }
    this.expect('FROM', 'FROM');
    const source = this.source();
    let condition: Expr | undefined;
    if (this.isOp('WHERE')) {
      this.next();
      condition = this.expression();
    }
    this.expect('INTO', 'INTO');
    const sink = this.sink();
    if (this.peek.kind !== 'eof') throw this.error('expected end of route');
    return condition === undefined ? { source, sink } : { source, condition, sink };
  }

  source(): string {
    const t = this.peek;
    if (t.kind !== 'path' || !SOURCE_PATH.test(t.text))
      throw this.error('expected a source path such as /messages/*');
    this.next();
    return t.text;
  }

  sink(): Sink {
    const t = this.next();
    if (t.kind === 'sysprop') {
      if (t.text.toLowerCase() === 'upstream') return { type: 'upstream' };
      throw new RouteSyntaxError(`unknown system endpoint '$${t.text}'`, t.pos);
    }
    if (t.kind !== 'id') throw this.error('expected $upstream or BrokeredEndpoint("…")', t);
    if (t.text.toLowerCase() !== 'brokeredendpoint')
      throw new RouteSyntaxError(`unknown endpoint function '${t.text}'`, t.pos);
    this.expect('(');
    const target = this.next();
    if (target.kind !== 'string') throw this.error('expected an endpoint string', target);
    const match = BROKERED.exec(target.text);
    if (!match)
      throw new RouteSyntaxError('endpoint must be "/modules/{module}/inputs/{input}"', target.pos);
    this.expect(')');
    return { type: 'brokered', moduleId: match[1]!, inputName: match[2]! };
  }

  expression(level = 0): Expr {
    if (level >= LEVELS.length) return this.unary();
    let left = this.expression(level + 1);
    const ops = LEVELS[level]!;
    while (
      (this.peek.kind === 'op' || this.peek.kind === 'keyword') &&
      ops.includes(this.peek.text)
    ) {
      const op = this.next().text as BinaryOp;
      const right = this.expression(level + 1);
      left = { type: 'binary', op, left, right };
    }
    return left;
  }

  unary(): Expr {
    if (this.isOp('-') || this.isOp('NOT')) {
      const op = this.next().text as '-' | 'NOT';
      return { type: 'unary', op, operand: this.nested(() => this.unary()) };
    }
    return this.primary();
  }

  nested<T>(fn: () => T): T {
    this.#depth += 1;
    if (this.#depth > MAX_DEPTH) throw this.error('expression nested too deeply');
    try {
      return fn();
    } finally {
      this.#depth -= 1;
    }
  }

  primary(): Expr {
    const t = this.peek;
    switch (t.kind) {
      case 'number':
        this.next();
        return { type: 'literal', value: t.num! };
      case 'string':
        this.next();
        return { type: 'literal', value: t.text };
      case 'literal':
        this.next();
        return { type: 'literal', value: literalValue(t.text) };
      case 'sysprop':
        this.next();
        return sysprop(t, false);
      case 'id':
        return this.identifier();
      default:
        return this.grouped();
    }
  }

  grouped(): Expr {
    if (this.isOp('(')) {
      this.next();
      const inner = this.nested(() => this.expression());
      this.expect(')');
      return inner;
    }
    if (this.isOp('{')) {
      this.next();
      const t = this.next();
      if (t.kind !== 'sysprop') throw this.error('expected $property inside { }', t);
      this.expect('}');
      return sysprop(t, true);
    }
    throw this.error('expected a value');
  }

  identifier(): Expr {
    const t = this.next();
    if (!this.isOp('(')) return { type: 'appprop', name: t.text };
    const name = t.text.toLowerCase();
    const builtin = BUILTINS.get(name);
    if (!builtin) throw new RouteSyntaxError(`unknown function '${t.text}'`, t.pos);
    this.next();
    const args: Expr[] = [];
    if (!this.isOp(')')) {
      do args.push(this.nested(() => this.expression()));
      while (this.isOp(',') && this.next());
    }
    this.expect(')');
    if (args.length < builtin.minArgs || args.length > builtin.maxArgs)
      throw new RouteSyntaxError(`wrong number of arguments to ${name}`, t.pos);
    return { type: 'call', name, args };
  }
}

function literalValue(text: string): boolean | null | undefined {
  if (text === 'true') return true;
  if (text === 'false') return false;
  return text === 'null' ? null : undefined;
}

/** `$twin` and `$twin.…`: twin queries of IoT Hub routing, which the hub cannot evaluate. */
const TWIN_QUERY = /^twin(\.|$)/i;

function sysprop(t: Token, escaped: boolean): Expr {
  const name = t.text;
  if (TWIN_QUERY.test(name))
    throw new RouteSyntaxError(
      `$twin conditions are not supported: the hub routes on $body, system and application properties and reads no twin while routing (found '$${name}')`,
      t.pos,
    );
  if ((name.startsWith('body.') || name.includes('[')) && !BODY_PATH.test(name))
    throw new RouteSyntaxError(`invalid $body query '$${name}'`, t.pos);
  return { type: 'sysprop', name, escaped };
}

/** Parses a route. Throws {@link RouteSyntaxError} (and nothing else) on bad input. */
export function parseRoute(text: string): RouteAst {
  return new Parser(text).route();
}

/** Parses a bare condition (the structured route form's `condition`). */
export function parseCondition(text: string): Expr {
  const parser = new Parser(text);
  const expr = parser.expression();
  if (parser.peek.kind !== 'eof') throw parser.error('expected end of condition');
  return expr;
}
