// Everything the CLI prints goes through here: data on stdout (tables for people, JSON for scripts),
// messages and progress on stderr, so `zfaas ... | jq` always sees clean data.
import { SingleBar } from 'cli-progress';
import Table from 'cli-table3';
import type { Progress } from './api.js';
import { bytes } from './format.js';

export interface Output {
  /** One line (or block) of data on stdout. */
  print(text: string): void;
  /** A message for the person on stderr. */
  note(text: string): void;
  json(value: unknown): void;
  table(head: string[], rows: string[][]): void;
  /** key: value lines, for one object. */
  fields(pairs: ReadonlyArray<readonly [string, string]>): void;
  /** An upload progress bar, only when stderr is a terminal and the upload is worth watching. */
  progress(label: string): Progress | undefined;
  /** A status line on stderr rewritten in place (null clears it); only when stderr is a terminal. */
  status?(text: string | null): void;
}

const PROGRESS_MIN_BYTES = 1024 * 1024;

// Borderless, kubectl-like: easy to read and to grep.
const BORDERLESS = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: '   ',
};

export function renderTable(head: string[], rows: string[][], color: boolean): string {
  const t = new Table({
    head,
    chars: BORDERLESS,
    style: { 'padding-left': 0, 'padding-right': 0, head: color ? ['cyan'] : [], border: [] },
  });
  t.push(...rows);
  return t
    .toString()
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
}

export function streamOutput(stdout: NodeJS.WriteStream, stderr: NodeJS.WriteStream): Output {
  return {
    print: (text) => void stdout.write(text.endsWith('\n') ? text : `${text}\n`),
    note: (text) => void stderr.write(text.endsWith('\n') ? text : `${text}\n`),
    json: (value) => void stdout.write(`${JSON.stringify(value, null, 2)}\n`),
    table: (head, rows) => void stdout.write(`${renderTable(head, rows, stdout.isTTY === true)}\n`),
    fields: (pairs) => {
      const w = Math.max(0, ...pairs.map(([k]) => k.length)) + 1;
      stdout.write(pairs.map(([k, v]) => `${`${k}:`.padEnd(w)} ${v}`).join('\n') + '\n');
    },
    ...(stderr.isTTY ? { status: (text: string | null) => void stderr.write(`\r\x1b[K${text ?? ''}`) } : {}),
    progress: (label) => {
      if (!stderr.isTTY) return undefined;
      let bar: SingleBar | undefined;
      return {
        start: (total) => {
          if (total < PROGRESS_MIN_BYTES) return;
          bar = new SingleBar({
            stream: stderr,
            format: `${label} [{bar}] {percentage}% {sentText} / {totalText}`,
            hideCursor: true,
            clearOnComplete: true,
            barsize: 30,
          });
          bar.start(total, 0, { sentText: bytes(0), totalText: bytes(total) });
        },
        update: (sent) => bar?.update(sent, { sentText: bytes(sent) }),
        stop: () => {
          bar?.stop();
          bar = undefined;
        },
      };
    },
  };
}
