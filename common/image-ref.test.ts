// The image reference grammar: what a deploy with --image accepts and how it reads the registry part.
import { describe, expect, it } from 'vitest';
import { parseImageRef } from './image-ref.js';

describe('parseImageRef', () => {
  it('reads the references people write', () => {
    expect(parseImageRef('nginx')).toEqual({ path: 'nginx' });
    expect(parseImageRef('acme/api:1.2')).toEqual({ path: 'acme/api', tag: '1.2' });
    expect(parseImageRef('zfaas-fn/hello:3f2a')).toEqual({ path: 'zfaas-fn/hello', tag: '3f2a' });
    expect(parseImageRef('localhost:5000/team/api:v1')).toEqual({ registry: 'localhost:5000', path: 'team/api', tag: 'v1' });
    expect(parseImageRef('localhost/api')).toEqual({ registry: 'localhost', path: 'api' });
    expect(parseImageRef('registry.example.com/x/y_z__w')).toEqual({ registry: 'registry.example.com', path: 'x/y_z__w' });
    const d = `sha256:${'a'.repeat(64)}`;
    expect(parseImageRef(`ghcr.io/o/r:1@${d}`)).toEqual({ registry: 'ghcr.io', path: 'o/r', tag: '1', digest: d });
    expect(parseImageRef(`r@${d}`)).toEqual({ path: 'r', digest: d });
  });

  it('refuses what is not a reference, saying what was expected', () => {
    for (const bad of [
      '',
      'Nginx',
      'acme/API',
      'a b',
      'nginx:',
      'nginx:-x',
      '-nginx',
      'a//b',
      'a/b:t@sha256:12',
      'x;rm -rf /',
      'a:99999/b',
    ]) {
      const r = parseImageRef(bad);
      expect(typeof r, bad).toBe('string');
    }
    expect(parseImageRef('Nginx')).toMatch(/is not an image reference: expected an image reference such as nginx/);
    expect(parseImageRef('x'.repeat(256))).toMatch(/longer than 255/);
  });
});
