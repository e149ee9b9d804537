// JSON lines (one JSON value per line, blank lines ignored), as batches take them from the API and the CLI.

export class JsonLinesError extends Error {
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`line ${line}: not valid JSON: ${reason}`);
  }
}

/** The values of the non-blank lines; a bad line throws JsonLinesError with its 1-based number. */
export function parseJsonLines(text: string): unknown[] {
  const items: unknown[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    try {
      items.push(JSON.parse(line));
    } catch (e) {
      throw new JsonLinesError(i + 1, e instanceof Error ? e.message : String(e));
    }
  }
  return items;
}
