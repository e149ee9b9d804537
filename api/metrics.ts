// What the API measures about calls, for Prometheus (GET /metrics) and for the dashboard's per-function
// latency (GET /metrics/functions). Everything is fed by Calls' events, so the call path stays untouched;
// gauges that describe the cluster (queue, nodes, warm containers) are read from the node registry and the queue at scrape time.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NodeRegistry } from './broker.js';
import type { Calls, CallEvents } from './calls.js';
import { Recent } from './quantiles.js';
import type { QueueView } from './scheduler.js';

type Finished = CallEvents['finished'][0];

// Seconds; from a warm call (~1 ms) to a long one (the default timeout is 30 s).
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

// Calls of a function not accepted by this API process (e.g. recovered after a restart) have no name here.
const UNKNOWN = 'unknown';

export interface FunctionStats {
  calls: number; // finished since the API started
  errors: number; // ERROR or TIMEOUT
  p50: number | null; // ms, over its most recent calls
  p95: number | null;
  lastAt: string | null;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly recent = new Map<string, Recent>(); // function -> latencies of its last calls
  private readonly totals = new Map<string, { calls: number; errors: number; lastAt: number }>();

  constructor(calls: Calls, nodes: NodeRegistry, queue: QueueView) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    const finished = new Counter({
      name: 'zfaas_calls_total',
      help: 'Calls that reached a final state, by function and status',
      labelNames: ['function', 'status'],
      registers,
    });
    const accepted = new Counter({
      name: 'zfaas_calls_accepted_total',
      help: 'Calls accepted (stored PENDING), by function',
      labelNames: ['function'],
      registers,
    });
    const latency = new Histogram({
      name: 'zfaas_call_latency_seconds',
      help: 'From acceptance to final state (queueing, container, run), by function',
      labelNames: ['function'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const duration = new Histogram({
      name: 'zfaas_call_duration_seconds',
      help: 'Run time inside the container as the node measured it, by function',
      labelNames: ['function'],
      buckets: LATENCY_BUCKETS,
      registers,
    });

    calls.events.on('accepted', (call) => accepted.inc({ function: call.funcName }));
    calls.events.on('finished', (f: Finished) => {
      const fn = f.funcName ?? UNKNOWN;
      finished.inc({ function: fn, status: f.outcome.status });
      if (f.latencyMs !== undefined) latency.observe({ function: fn }, f.latencyMs / 1000);
      if (f.outcome.durationMs !== undefined) duration.observe({ function: fn }, f.outcome.durationMs / 1000);
      this.remember(fn, f);
    });

    // Gauges computed when scraped: they describe the cluster now, not a history.
    new Gauge({
      name: 'zfaas_queue_length',
      help: 'Calls waiting at the API for a node with room',
      registers,
      collect() {
        this.set(queue.queueLength);
      },
    });
    new Gauge({
      name: 'zfaas_nodes_alive',
      help: 'Nodes currently registered and heartbeating',
      registers,
      collect() {
        this.set(nodes.alive().length);
      },
    });
    new Gauge({
      name: 'zfaas_node_running_calls',
      help: 'Calls a node holds (running or queued on it), by node',
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const n of nodes.alive()) this.set({ node: n.info.id }, n.inflight.size);
      },
    });
    new Gauge({
      name: 'zfaas_warm_containers',
      help: 'Warm containers holding a function version, by node and function (NAME@VERSION)',
      labelNames: ['node', 'function'],
      registers,
      collect() {
        this.reset(); // a function whose containers were reaped must disappear, not keep its last value
        for (const n of nodes.alive()) {
          for (const [fn, count] of Object.entries(n.load.warm)) this.set({ node: n.info.id, function: fn }, count);
        }
      },
    });
    new Gauge({
      name: 'zfaas_containers',
      help: "Containers in a node's pool, by node and state",
      labelNames: ['node', 'state'],
      registers,
      collect() {
        this.reset();
        for (const n of nodes.alive()) {
          for (const [state, count] of Object.entries(n.load.containers)) this.set({ node: n.info.id, state }, count);
        }
      },
    });
  }

  private remember(fn: string, f: Finished): void {
    let r = this.recent.get(fn);
    if (!r) this.recent.set(fn, (r = new Recent()));
    if (f.latencyMs !== undefined) r.add(f.latencyMs);
    const t = this.totals.get(fn) ?? { calls: 0, errors: 0, lastAt: 0 };
    t.calls++;
    if (f.outcome.status !== 'DONE') t.errors++;
    t.lastAt = Date.now();
    this.totals.set(fn, t);
  }

  // Per function, for people (the dashboard): counts since start and latency over the most recent calls.
  functions(): Record<string, FunctionStats> {
    const out: Record<string, FunctionStats> = {};
    for (const [fn, t] of this.totals) {
      const r = this.recent.get(fn);
      out[fn] = {
        calls: t.calls,
        errors: t.errors,
        p50: r?.quantile(0.5) ?? null,
        p95: r?.quantile(0.95) ?? null,
        lastAt: new Date(t.lastAt).toISOString(),
      };
    }
    return out;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
