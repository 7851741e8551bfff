import { routeProblems, validateObject, type ValidationProblem } from './validate.js';

/** What `kedge validate` reports for one object: schema and CEL first, then routes. */
function check(obj: unknown): ValidationProblem[] {
  const problems = validateObject(obj);
  return problems.length > 0 ? problems : routeProblems(obj as Record<string, unknown>);
}

const route = (spec: Record<string, unknown>): unknown => ({
  apiVersion: 'kedge.io/v1alpha1',
  kind: 'Route',
  metadata: { name: 'r' },
  spec: { deviceSelector: {}, ...spec },
});

const deployment = (routes: Record<string, unknown>[]): unknown => ({
  apiVersion: 'kedge.io/v1alpha1',
  kind: 'EdgeDeployment',
  metadata: { name: 'd' },
  spec: { selector: {}, routes },
});

describe('kedge validate compiles routes', () => {
  it('leaves route compilation out of the API-server checks, which accept such routes', () => {
    expect(
      validateObject(route({ route: 'FROM /messages/* WHERE $twin.x = 1 INTO $upstream' })),
    ).toEqual([]);
  });

  it('accepts routes that compile', () => {
    expect(check(route({ route: 'FROM /messages/* INTO $upstream' }))).toEqual([]);
    expect(
      check(deployment([{ name: 'a', from: '/messages/*', condition: 'x = 1', to: '$upstream' }])),
    ).toEqual([]);
  });

  it('reports a string route error with its offset', () => {
    const text = "FROM /messages/* WHERE $twin.tags.site = 'lyon' INTO $upstream";
    expect(check(route({ route: text }))).toEqual([
      {
        path: 'spec.route',
        message: expect.stringMatching(
          new RegExp(
            `^route does not compile at offset ${text.indexOf('$twin')}: \\$twin conditions are not supported`,
          ),
        ) as unknown,
      },
    ]);
  });

  it('points into the structured field that holds the error', () => {
    const problems = check(
      deployment([
        { name: 'ok', route: 'FROM /messages/* INTO $upstream' },
        { name: 'cond', from: '/messages/*', condition: 'a = 1 AND $twin.x = 2', to: '$upstream' },
        { name: 'sink', from: '/messages/*', to: 'BrokeredEndpoint("/modules/x")' },
        { name: 'src', from: 'messages', to: '$upstream' },
      ]),
    );
    expect(problems.map((p) => [p.path, p.message.replace(/: .*/, '')])).toEqual([
      ['spec.routes[1].condition', 'route does not compile at offset 10'],
      ['spec.routes[2].to', 'route does not compile at offset 17'],
      ['spec.routes[3].from', 'route does not compile at offset 0'],
    ]);
  });
});
