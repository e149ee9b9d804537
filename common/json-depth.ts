// How deeply call params may nest. Deeper values cannot be stored (JSON.stringify recurses) nor read by
// the python loader (its json module recurses too); no real params come close. The API refuses them and
// the CLI says so before sending.
export const MAX_JSON_DEPTH = 64;

/** The nesting depth of a JSON value, walked without recursion (so it cannot overflow the stack itself). */
export function jsonDepth(value: unknown, stopAt = Infinity): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    const depth = d + 1;
    if (depth > max) max = depth;
    if (max > stopAt) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v as object)) stack.push([child, depth]);
  }
  return max;
}
