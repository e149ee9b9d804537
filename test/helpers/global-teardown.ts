// Once every test file has run: the folders of throwaway PostgreSQL clusters whose tests ended without
// stopping them (their servers went with their test processes) are removed (test/helpers/postgres.ts).
import { sweepClusters } from './postgres.js';
import { sleep } from './platform.js';

export default function setup(): () => Promise<void> {
  return async () => {
    await sleep(1000); // a server told to go when its test process ended has gone by then
    await sweepClusters();
  };
}
