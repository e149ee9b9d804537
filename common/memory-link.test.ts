// The in-process link between the broker and a node: messages arrive in sending order, a send to a node that
// is not attached fails, and what a node sends before the API listens reaches it once it does.
import { describe, expect, it } from 'vitest';
import { MemoryLink } from './memory-link.js';

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('MemoryLink', () => {
  it('hands messages over both ways, in sending order, with the sending node id', async () => {
    const link = new MemoryLink<string, string>();
    const atApi: string[] = [];
    const atNode: string[] = [];
    link.listen((id, m) => atApi.push(`${id}:${m}`));
    const port = link.attach('n1', (m) => atNode.push(m));
    for (let i = 0; i < 50; i++) {
      void port.send(`up${i}`);
      void link.toNode('n1', `down${i}`);
    }
    expect(atApi).toEqual([]); // never inside the sender's own call
    expect(atNode).toEqual([]);
    await settle();
    expect(atApi).toEqual(Array.from({ length: 50 }, (_, i) => `n1:up${i}`));
    expect(atNode).toEqual(Array.from({ length: 50 }, (_, i) => `down${i}`));
  });

  it('refuses a send to a node that is not attached, or no longer', async () => {
    const link = new MemoryLink<string, string>();
    await expect(link.toNode('n1', 'x')).rejects.toThrow(/not attached/);
    const port = link.attach('n1', () => undefined);
    expect(link.has('n1')).toBe(true);
    port.close();
    expect(link.has('n1')).toBe(false);
    await expect(link.toNode('n1', 'x')).rejects.toThrow(/not attached/);
    await expect(port.send('x')).rejects.toThrow(/closed/);
  });

  it('keeps what a node sends while no API listens, for the next one', async () => {
    const link = new MemoryLink<string, string>();
    const port = link.attach('n1', () => undefined);
    await port.send('register');
    const heard: string[] = [];
    link.listen((id, m) => heard.push(`${id}:${m}`));
    await port.send('heartbeat');
    await settle();
    expect(heard).toEqual(['n1:register', 'n1:heartbeat']);
    link.unlisten();
    await port.send('outcome');
    await settle();
    expect(heard).toHaveLength(2);
    link.listen((id, m) => heard.push(`${id}:${m}`));
    await settle();
    expect(heard).toEqual(['n1:register', 'n1:heartbeat', 'n1:outcome']);
  });

  it('gives an id attached again to its newest holder only', async () => {
    const link = new MemoryLink<string, string>();
    const got: string[] = [];
    const old = link.attach('n1', (f) => got.push(`old:${f}`));
    link.attach('n1', (f) => got.push(`new:${f}`));
    old.close(); // the old holder's close leaves the new one attached
    await link.toNode('n1', 'x');
    await settle();
    expect(got).toEqual(['new:x']);
  });
});
