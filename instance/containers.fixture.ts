// Tables for the unit tests of containers.ts and placement.ts: a container put straight into any state,
// along legal transitions.
import { fnKey, type ContainerState, type ContainerTable } from './containers.js';

// The moves that bring a new container (in `creating`) to each state.
const PATH: Record<ContainerState, ContainerState[]> = {
  creating: [],
  starting: ['starting'],
  loading: ['starting', 'loading'],
  warm: ['starting', 'warm'],
  busy: ['starting', 'busy'],
  idle: ['starting', 'busy', 'idle'],
  cancelling: ['starting', 'busy', 'cancelling'],
  removing: ['removing'],
  removed: ['removed'],
};

interface Put {
  owner?: string;
  key?: string;
  runtime?: string;
  lined?: boolean;
  at?: number; // when it was created and last used
  slots?: number; // calls it may run at once (default 1)
  inflight?: number; // busy: the calls it runs (default 1)
  closed?: boolean; // takes no more calls
  behind?: boolean; // busy: a call waits on its line behind the one it runs
}

// Adds a container and moves it to `state` along legal transitions, all at time `at`.
export function put(t: ContainerTable, id: string, state: ContainerState, o: Put = {}): void {
  const at = o.at ?? 0;
  const lined = o.lined ?? true;
  t.add({ id, owner: o.owner ?? 'w1', key: o.key ?? fnKey('f', 1), runtime: o.runtime ?? 'node', lined, slots: o.slots }, at);
  for (const s of PATH[state]) t.move(id, s, at);
  if (state === 'busy') for (let i = 1; i < (o.inflight ?? 1); i++) t.join(id, at);
  if (o.behind) t.queueBehind(id);
  if (o.closed) t.close(id);
}
