// Whether an API may run without a token: only when it listens on loopback. Who a request acts as (the
// operator's token, a namespace's key) is decided in tenancy/identity.ts.
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
