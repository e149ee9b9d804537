// What a function's web answer may carry (web-headers.ts), and the node's check of a loader's response
// (checkResponse in instance/session.ts), which keeps the same headers out of the call record.
import { describe, expect, it } from 'vitest';
import { checkResponse } from '../instance/session.js';
import { FORBIDDEN_HEADERS, isolate, SANDBOX_CSP } from './web-headers.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe("a function's web answer", () => {
  it('always carries the sandbox and nosniff, whatever the function said', () => {
    expect(isolate({})).toEqual({ 'content-security-policy': [SANDBOX_CSP], 'x-content-type-options': 'nosniff' });
    const h = isolate({ 'X-Content-Type-Options': 'sniff-away', 'content-type': 'text/html' });
    expect(h['x-content-type-options']).toBe('nosniff');
    expect(h['content-type']).toBe('text/html');
    expect(SANDBOX_CSP).toBe('sandbox allow-scripts allow-forms allow-popups'); // no allow-same-origin: an opaque origin
  });

  it("keeps the function's own policy beside the sandbox, so that it can only add restrictions", () => {
    const mine = "default-src 'self'; script-src 'nonce-abc'";
    expect(isolate({ 'content-security-policy': mine })['content-security-policy']).toEqual([mine, SANDBOX_CSP]);
    // A sandbox of its own that would allow the origin back is one policy among two: ours still applies.
    const lifting = 'sandbox allow-same-origin allow-scripts';
    expect(isolate({ 'Content-Security-Policy': [lifting, mine] })['content-security-policy']).toEqual([lifting, mine, SANDBOX_CSP]);
    expect(isolate({ 'content-security-policy-report-only': "default-src 'none'" })['content-security-policy-report-only']).toBe(
      "default-src 'none'",
    );
  });

  it('drops the headers that act for the whole origin, and the platform’s own, in any case', () => {
    const sent: Record<string, string> = {
      'Service-Worker-Allowed': '/',
      'clear-site-data': '"storage", "cookies"',
      'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
      'Public-Key-Pins': 'pin-sha256="x"; max-age=1',
      'public-key-pins-report-only': 'pin-sha256="x"',
      'Expect-CT': 'max-age=1, enforce',
      'Alt-Svc': 'h2="evil.example:443"',
      'Origin-Agent-Cluster': '?0',
      NEL: '{"report_to":"x","max_age":1}',
      'Report-To': '{"group":"x"}',
      'Accept-CH': 'Sec-CH-UA-Full-Version-List',
      'accept-ch-lifetime': '86400',
      'Critical-CH': 'Sec-CH-UA',
      'Set-Login': 'logged-in',
      'X-Zfaas-Status': 'DONE',
      'x-zfaas-call': '1',
      'Idempotent-Replayed': 'true',
    };
    const out = isolate(sent);
    expect(Object.keys(out).sort()).toEqual(['content-security-policy', 'x-content-type-options']);
    for (const name of Object.keys(sent))
      expect(FORBIDDEN_HEADERS.has(name.toLowerCase()) || name.toLowerCase().startsWith('x-zfaas-')).toBe(true);
  });

  it("passes what governs only the function's own response", () => {
    const sent = {
      'set-cookie': ['session=1; Path=/function/app; HttpOnly', 'theme=dark'],
      'access-control-allow-origin': 'https://app.example',
      'access-control-allow-credentials': 'true',
      location: '/function/app/next',
      'cache-control': 'no-store',
      link: '</function/app/style.css>; rel=preload; as=style',
      'x-frame-options': 'DENY',
      'x-request-id': 'abc',
    };
    expect(isolate(sent)).toMatchObject(sent);
  });
});

describe("the node's check of a web response", () => {
  it('keeps the forbidden headers out of what it passes on (and so out of the call record)', () => {
    const r = checkResponse({
      status: 200,
      headers: { 'Content-Type': 'text/html', 'Service-Worker-Allowed': '/', 'Clear-Site-Data': '"*"', 'X-Zfaas-Status': 'DONE' },
      body: b64('<p>hi</p>'),
    });
    expect(typeof r).toBe('object');
    expect(r).toMatchObject({ status: 200, headers: { 'content-type': 'text/html' }, bytes: 9 });
    expect(Object.keys((r as { headers: object }).headers)).toEqual(['content-type']);
  });

  it('still refuses a response shaped wrongly', () => {
    expect(checkResponse({ status: 200, headers: { 'bad name': 'x' }, body: '' })).toMatch(/is not a token/);
    expect(checkResponse({ status: 200, headers: { a: 'x\r\nset-cookie: y' }, body: '' })).toMatch(/CR, LF or NUL/);
    expect(checkResponse({ status: 99, headers: {}, body: '' })).toMatch(/status/);
  });
});
