// nodes: the instances the API knows, their state, load and warm containers
import type { Command } from 'commander';
import { duration } from '../client/format.js';
import type { NodeView } from '../client/schemas.js';
import { act, clientCommand, examples, type Deps } from './common.js';

function warm(n: NodeView): string {
  const entries = Object.entries(n.warm ?? {}).filter(([, k]) => k > 0);
  if (entries.length === 0) return '-';
  return entries.map(([fn, k]) => (k > 1 ? `${fn} x${k}` : fn)).join(', ');
}

export function nodeCommands(p: Command, deps: Deps): void {
  const { out } = deps;
  examples(clientCommand(p, 'nodes', 'list the nodes: state, load, warm containers').option('--json', 'print JSON'), [
    'zfaas nodes',
    'zfaas nodes --json',
  ]).action(
    act(deps, async (o: { json?: boolean }, cmd: Command) => {
      const list = await (await deps.client(cmd)).nodes();
      if (o.json) return out.json(list);
      if (list.length === 0) return out.note('no nodes have joined; start one with: zfaas instance --broker tcp://API_HOST:5561');
      out.table(
        ['NODE', 'STATE', 'RUNNING', 'MINIWORKERS', 'POLICY', 'WARM', 'LAST SEEN'],
        list.map((n) => [
          n.id,
          n.state,
          n.capacity !== undefined ? `${n.running ?? 0}/${n.capacity}` : String(n.running ?? ''),
          n.miniworkers !== undefined ? String(n.miniworkers) : '',
          n.policy ?? '',
          warm(n),
          n.lastSeenMsAgo !== undefined ? `${duration(n.lastSeenMsAgo)} ago` : '',
        ]),
      );
    }),
  );
}
