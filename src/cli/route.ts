import type { Command } from 'commander';
import { formatRoute, parseRoute, RouteSyntaxError } from '../common/routes/index.js';

/** `kedge route check "<route>"`: parses a route and prints it, or the error and its position. */
export function registerRouteCommands(program: Command): void {
  const route = program.command('route').description('Work with IoT Edge message routes.');
  route
    .command('check')
    .description('Parse a route (FROM … WHERE … INTO …) and print it in canonical form.')
    .argument('<route>', 'the route text')
    .addHelpText(
      'after',
      `\nExample:\n  kedge route check 'FROM /messages/modules/sensor/outputs/* WHERE $body.temperature > 25 INTO BrokeredEndpoint("/modules/filter/inputs/input1")'\n`,
    )
    .action((text: string) => {
      try {
        const ast = parseRoute(text);
        console.log(formatRoute(ast));
        console.log(JSON.stringify(ast, null, 2));
      } catch (err) {
        if (!(err instanceof RouteSyntaxError)) throw err;
        process.stderr.write(`error at position ${err.position}: ${err.message}\n`);
        process.stderr.write(`  ${text}\n  ${' '.repeat(err.position)}^\n`);
        process.exitCode = 1;
      }
    });
}
