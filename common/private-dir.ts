// A folder only its owner may enter (0700): the data folders zfaas makes hold the store, function trees
// and the services' sockets, none of which another user of the machine has any business reading. One
// made earlier with a wider mode is narrowed, since what it holds is the same.
import { chmod, mkdir } from 'node:fs/promises';

export async function privateDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  await chmod(path, 0o700);
}
