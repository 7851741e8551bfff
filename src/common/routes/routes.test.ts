import fc from 'fast-check';
import type { Expr, RouteAst } from './ast.js';
import { compileRoute, evaluateCondition } from './compile.js';
import { RouteSyntaxError } from './errors.js';
import { EvalContext } from './evaluate.js';
import { formatRoute } from './format.js';
import { parseRoute } from './parser.js';

function message(
  body: unknown,
  app: Record<string, string> = {},
  sys: Record<string, string> = {},
) {
  return {
    body: Buffer.from(JSON.stringify(body)),
    appProperties: new Map(Object.entries(app)),
    systemProperties: new Map(
      Object.entries({ contentType: 'application/json', contentEncoding: 'utf-8', ...sys }),
    ),
  };
}

function errorOf(text: string): RouteSyntaxError {
  try {
    parseRoute(text);
  } catch (err) {
    if (err instanceof RouteSyntaxError) return err;
    throw err;
  }
  throw new Error(`parsed: ${text}`);
}

describe('route parser', () => {
  it('parses the IoT Edge examples', () => {
    const r = parseRoute(
      'FROM /messages/modules/sensor/outputs/* WHERE $body.temperature > 30 AND severity = \'high\' INTO BrokeredEndpoint("/modules/alerter/inputs/in1")',
    );
    expect(r.source).toBe('/messages/modules/sensor/outputs/*');
    expect(r.sink).toEqual({ type: 'brokered', moduleId: 'alerter', inputName: 'in1' });
    expect(parseRoute('select * from /* into $UPSTREAM').sink).toEqual({ type: 'upstream' });
    expect(
      parseRoute('FROM /messages/* WHERE NOT IS_DEFINED($connectionModuleId) INTO $upstream')
        .condition,
    ).toEqual({
      type: 'unary',
      op: 'NOT',
      operand: {
        type: 'call',
        name: 'is_defined',
        args: [{ type: 'sysprop' as const, name: 'connectionModuleId', escaped: false }],
      },
    });
  });

  it('refuses $twin conditions at their position', () => {
    const text = "FROM /messages/* WHERE $twin.properties.reported.site = 'a' INTO $upstream";
    const err = errorOf(text);
    expect(err.position).toBe(text.indexOf('$twin'));
    expect(err.message).toMatch(
      /\$twin conditions are not supported.*\$twin\.properties\.reported\.site/,
    );
    const escaped = 'FROM /messages/* WHERE a = 1 AND {$Twin.tags.x} = 2 INTO $upstream';
    expect(errorOf(escaped).position).toBe(escaped.indexOf('$Twin'));
    expect(() => parseRoute('FROM /messages/* WHERE $twins = 1 INTO $upstream')).not.toThrow();
  });

  it('reports errors with their zero-based position', () => {
    expect(errorOf('FROM /messages/* INTO $nowhere').position).toBe(22);
    expect(errorOf('FROM /messages/* WHERE a > INTO $upstream').position).toBe(27);
    expect(errorOf('FROM /messages/* INTO BrokeredEndpoint("/modules/x")').position).toBe(39);
    expect(errorOf('FROM messages INTO $upstream').position).toBe(5);
    expect(errorOf('FROM /messages/* WHERE nope(1) INTO $upstream').message).toMatch(
      /unknown function/,
    );
    expect(errorOf('FROM /messages/* WHERE "abc INTO $upstream').message).toMatch(/unterminated/);
    expect(errorOf('FROM /messages/* WHERE a = 1').message).toMatch(/expected INTO/);
  });

  it('accepts comments, hex, reals and escapes', () => {
    const r = parseRoute(
      'FROM /messages/* /* c */ WHERE a = 0x1F OR b = 1.5e2 OR c = "q\\"\\u0041" INTO $upstream',
    );
    expect(formatRoute(r)).toBe(
      'FROM /messages/* WHERE (((a = 31) OR (b = 150)) OR (c = "q\\"A")) INTO $upstream',
    );
  });
});

describe('condition evaluation', () => {
  const m = message(
    { temperature: 30, nested: { list: [1, 'two'] }, obj: { a: 1 } },
    { severity: 'high', $connectionDeviceId: 'spoofed' },
    { connectionDeviceId: 'dev1', connectionModuleId: 'sensor' },
  );
  it.each([
    ['$body.temperature > 25', true],
    ['$body.temperature > 35', false],
    ['$body.nested.list[1] = "two"', true],
    ['$body.obj = 1', false],
    ['$body.missing > 1', false],
    ['NOT ($body.missing > 1)', false],
    ['severity = "high" AND $connectionModuleId = "sensor"', true],
    ['$connectionDeviceId = "spoofed"', true],
    ['{$connectionDeviceId} = "dev1"', true],
    ['is_defined($connectionModuleId)', true],
    ['NOT is_defined($connectionModuleId)', false],
    ['upper(severity) = "HIGH" AND length(severity) = 4', true],
    ['starts_with($body.nested.list[1], "tw") OR false', true],
    ['$body.missing > 1 OR true', true],
    ['$body.missing ?? 5 = 5', true],
    ['"a" || "b" = "ab"', true],
    ['2 + 3 * 4 = 14', true],
    ['-$body.temperature < 0', true],
    ['5 -3 = 2', true],
    ['power(2, 10) = 1024 AND sqrt(16) = 4 AND abs(-3) = 3', true],
    ['as_number("42") = 42 AND is_number(as_number("x")) = false', true],
    ['substring("hello", 1, 3) = "ell" AND index_of("hello", "l") = 2', true],
    ['severity = 1', false],
    ['1 / 0 = 1', false],
  ])('%s → %s', (condition, expected) => {
    expect(evaluateCondition(condition, m)).toBe(expected);
  });

  it('reads $body only for application/json in UTF-x', () => {
    const plain = message({ temperature: 30 }, {}, { contentType: 'text/plain' });
    expect(evaluateCondition('$body.temperature > 25', plain)).toBe(false);
  });

  describe('$body in UTF-16 and UTF-32', () => {
    const json = JSON.stringify({ temperature: 30, site: 'Zürich 🌡' });
    const encoded = (body: Buffer, contentEncoding: string) => ({
      body,
      appProperties: new Map<string, string>(),
      systemProperties: new Map(
        Object.entries({ contentType: 'application/json', contentEncoding }),
      ),
    });
    const utf16be = (text: string): Buffer => Buffer.from(text, 'utf16le').swap16();
    const utf32 = (text: string, bigEndian: boolean): Buffer => {
      const points = [...text].map((c) => c.codePointAt(0)!);
      const out = Buffer.alloc(points.length * 4);
      points.forEach((p, i) =>
        bigEndian ? out.writeUInt32BE(p, i * 4) : out.writeUInt32LE(p, i * 4),
      );
      return out;
    };
    const BOM = '\uFEFF';
    const condition = "$body.temperature > 25 AND $body.site = 'Zürich 🌡'";

    it.each([
      ['utf-8', Buffer.from(json, 'utf8')],
      ['UTF-8', Buffer.from(BOM + json, 'utf8')],
      ['utf-16', Buffer.from(json, 'utf16le')],
      ['utf-16', Buffer.from(BOM + json, 'utf16le')],
      ['utf-16', utf16be(BOM + json)],
      ['utf-16le', Buffer.from(json, 'utf16le')],
      ['UTF-16BE', utf16be(json)],
      ['utf-16be', utf16be(BOM + json)],
      ['utf-32', utf32(json, false)],
      ['utf-32', utf32(BOM + json, true)],
      ['utf-32le', utf32(json, false)],
      ['utf-32be', utf32(json, true)],
    ])('reads a %s body (%#)', (encoding, body) => {
      expect(evaluateCondition(condition, encoded(body, encoding))).toBe(true);
    });

    it.each([
      ['utf-16be', Buffer.from(json, 'utf16le')],
      ['utf-8', Buffer.from(json, 'utf16le')],
      ['utf-16', Buffer.from(json + 'x', 'utf8')],
      ['utf-32', utf32(json, true)],
      ['utf-32le', Buffer.concat([utf32(json, false), Buffer.from([0, 0, 0x11, 0])])],
      ['latin1', Buffer.from(json, 'latin1')],
    ])('leaves $body undefined for a body that is not %s (%#)', (encoding, body) => {
      expect(evaluateCondition('$body.temperature > 25', encoded(body, encoding))).toBe(false);
      expect(evaluateCondition('NOT is_defined($body.temperature)', encoded(body, encoding))).toBe(
        true,
      );
    });
  });

  it('matches sources by prefix, case-insensitively', () => {
    const route = compileRoute({
      name: 'r',
      route: 'FROM /messages/modules/Sensor/* INTO $upstream',
    });
    const ctx = new EvalContext(m);
    expect(route.matches('/messages/modules/sensor/outputs/o1', ctx)).toBe(true);
    expect(route.matches('/messages/modules/sensor', ctx)).toBe(true);
    expect(route.matches('/messages/modules/sensor2/outputs/o1', ctx)).toBe(false);
    expect(route.matches('/messages', ctx)).toBe(false);
    const all = compileRoute({ name: 'a', route: 'FROM /* INTO $upstream' });
    expect(all.matches('/messages', ctx)).toBe(true);
    expect(all.matches('/twinChangeNotifications', ctx)).toBe(true);
  });
});

// ---- property-based tests ----

const identifier = fc
  .stringMatching(/^[a-z_][a-z0-9_]{0,8}$/)
  .filter(
    (s) =>
      ![
        'and',
        'or',
        'not',
        'select',
        'from',
        'where',
        'into',
        'true',
        'false',
        'null',
        'undefined',
      ].includes(s),
  );

const literal: fc.Arbitrary<Expr> = fc
  .oneof(
    fc.constantFrom(true, false, null, undefined),
    fc.integer({ min: 0, max: 1_000_000 }),
    fc.double({ min: 0, max: 1e9, noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 8 }),
  )
  .map((value) => ({ type: 'literal' as const, value }));

const leaf: fc.Arbitrary<Expr> = fc.oneof(
  literal,
  identifier.map((name) => ({ type: 'appprop' as const, name })),
  fc
    .tuple(fc.array(identifier, { minLength: 1, maxLength: 3 }), fc.boolean())
    .map(([path, escaped]) => ({
      type: 'sysprop' as const,
      name: `body.${path.join('.')}`,
      escaped,
    })),
  fc
    .constantFrom('connectionDeviceId', 'connectionModuleId', 'contentType')
    .map((name) => ({ type: 'sysprop' as const, name, escaped: false })),
);

const expr: fc.Arbitrary<Expr> = fc.letrec<{ e: Expr }>((tie) => ({
  e: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc
      .tuple(
        fc.constantFrom(
          '*',
          '/',
          '%',
          '+',
          '-',
          '||',
          '<',
          '<=',
          '>',
          '>=',
          '=',
          '!=',
          '<>',
          'AND',
          'OR',
          '??',
        ),
        tie('e'),
        tie('e'),
      )
      .map(([op, left, right]) => ({ type: 'binary' as const, op, left, right })),
    fc
      .tuple(fc.constantFrom('-', 'NOT'), tie('e'))
      .map(([op, operand]) => ({ type: 'unary' as const, op, operand })),
    fc
      .tuple(
        fc.constantFrom('lower', 'is_defined', 'concat', 'power'),
        fc.array(tie('e'), { minLength: 1, maxLength: 2 }),
      )
      .map(([name, args]) => {
        const needed = name === 'concat' || name === 'power' ? 2 : 1;
        const full = [...args, ...args].slice(0, needed);
        return { type: 'call' as const, name, args: full };
      }),
  ),
})).e;

const route: fc.Arbitrary<RouteAst> = fc
  .record({
    source: fc
      .array(fc.oneof(identifier, fc.constant('*')), { minLength: 1, maxLength: 4 })
      .map((parts) => `/${parts.join('/')}`),
    condition: fc.option(expr, { nil: undefined }),
    sink: fc.oneof(
      fc.constant({ type: 'upstream' as const }),
      fc
        .tuple(identifier, identifier)
        .map(([moduleId, inputName]) => ({ type: 'brokered' as const, moduleId, inputName })),
    ),
  })
  .map((r) => (r.condition === undefined ? { source: r.source, sink: r.sink } : r));

describe('route parser properties', () => {
  it('valid routes round-trip through the formatter', () => {
    fc.assert(
      fc.property(route, (ast) => {
        expect(parseRoute(formatRoute(ast))).toEqual(ast);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws anything but RouteSyntaxError on arbitrary text', () => {
    const fragments = fc.constantFrom(
      'FROM',
      'WHERE',
      'INTO',
      'SELECT',
      '*',
      '/messages/*',
      '$upstream',
      'BrokeredEndpoint(',
      '"/modules/a/inputs/b"',
      ')',
      '(',
      '$body.a',
      '{',
      '}',
      'AND',
      'NOT',
      '=',
      '>',
      '"',
      "'",
      '\\',
      '1.5e',
      '0x',
      '/*',
      '*/',
      ',',
      'lower(',
      '??',
      '||',
      '[0]',
      '$',
      ' ',
    );
    const text = fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.array(fragments, { maxLength: 16 }).map((parts) => parts.join(' ')),
      fc.array(fragments, { maxLength: 16 }).map((parts) => parts.join('')),
    );
    fc.assert(
      fc.property(text, (t) => {
        try {
          const ast = parseRoute(t);
          expect(parseRoute(formatRoute(ast))).toEqual(ast);
        } catch (err) {
          expect(err).toBeInstanceOf(RouteSyntaxError);
          const position = (err as RouteSyntaxError).position;
          expect(position).toBeGreaterThanOrEqual(0);
          expect(position).toBeLessThanOrEqual(t.length);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('evaluation never throws and yields a boolean match', () => {
    fc.assert(
      fc.property(expr, fc.jsonValue(), (e, body) => {
        const compiled = compileRoute({
          name: 'p',
          route: formatRoute({ source: '/*', condition: e, sink: { type: 'upstream' } }),
        });
        expect(typeof compiled.matches('/messages', new EvalContext(message(body)))).toBe(
          'boolean',
        );
      }),
      { numRuns: 500 },
    );
  });
});
