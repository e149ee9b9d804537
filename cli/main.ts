#!/usr/bin/env node
// The zfaas command. Service commands start the parts; client commands talk to the REST API.
import { Command, InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import { errText, LOG_FORMATS } from '../common/log.js';
import { POLICIES, type Policy } from '../common/model.js';
import { printable } from './client/errors.js';
import { registerClientCommands } from './commands/index.js';
import { registerBackupCommands } from './backup.js';
import { settingsFromFiles } from './env-files.js';

// Loaded by the service commands only: dockerode, zeromq and level would cost every client command ~0.4 s.
const services = () => import('./services.js');

const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number');
  return n;
};

// Runs a service until SIGINT/SIGTERM, then stops it cleanly (containers removed, sockets closed). A signal
// that comes while the service is still starting stops it as soon as it has started: what it started by
// then (miniworkers, containers on their way) is removed as on any stop. Signals after the first change
// nothing (a supervisor may send several): a stop that hangs ends the process once its time is up.
async function serve(start: () => Promise<() => Promise<void>>): Promise<void> {
  let stop: (() => Promise<void>) | undefined;
  let asked: string | undefined;
  const stopNow = (s: () => Promise<void>): void => {
    s().then(
      () => process.exit(0),
      (e) => {
        console.error(`zfaas: stop failed: ${errText(e)}`);
        process.exit(1);
      },
    );
  };
  const onSignal = (sig: string): void => {
    if (asked) return;
    asked = sig;
    console.error(stop ? `zfaas: ${sig} received, stopping` : `zfaas: ${sig} received while starting: stopping once started`);
    // A node may drain for ZFAAS_DRAIN_TIMEOUT seconds and then needs time to remove its containers:
    // only past both does a stop that hangs end the process.
    const drainS = Number(process.env.ZFAAS_DRAIN_TIMEOUT);
    const force = setTimeout(() => process.exit(1), ((Number.isInteger(drainS) && drainS >= 0 ? drainS : 10) + 10) * 1000);
    force.unref();
    if (stop) stopNow(stop);
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  try {
    stop = await start();
  } catch (e) {
    console.error(`zfaas: ${errText(e)}`);
    const usage = await services().then(
      (s) => e instanceof s.UsageError,
      () => false,
    );
    process.exit(usage ? 2 : 1);
  }
  if (asked) stopNow(stop);
}

// The REST API's bearer token: the global --token, else ZFAAS_TOKEN (required beyond loopback).
const apiToken = (p: Command): string | undefined => (p.opts() as { token?: string }).token ?? (process.env.ZFAAS_TOKEN || undefined);

// Where call callbacks may go (common/allow-list.ts): the same flag on `up` and `api`.
const callbackAllowOpt = (): Option =>
  new Option(
    '--callback-allow <list>',
    "where call callbacks may be sent, comma separated: CIDRs (10.0.0.0/8), addresses, host names, *.domain wildcards, each with an optional :port; 'loopback' (the default) is 127.0.0.0/8,::1,localhost; 'none' refuses every callback",
  ).env('ZFAAS_CALLBACK_ALLOW');

// What functions deployed with network=true may reach besides the internet (instance/network.ts).
const functionNetworkAllowOpt = (): Option =>
  new Option(
    '--function-network-allow <list>',
    'what functions with network=true may reach beyond the internet (private ranges, the host and link-local addresses are refused), comma separated: CIDRs (10.1.0.0/16), addresses, host names (resolved when the node first runs such a function), each with an optional :port',
  ).env('ZFAAS_FUNCTION_NETWORK_ALLOW');

const secretsKeyOpt = (): Option =>
  new Option(
    '--secrets-key-file <file>',
    'file holding the master key that seals secrets (or the key itself in ZFAAS_SECRETS_KEY); keep it apart from the data',
  ).env('ZFAAS_SECRETS_KEY_FILE');

// Function web paths on an origin of their own: the same two flags on `up` and `api`.
const functionsPortOpt = (): Option =>
  new Option(
    '--functions-port <port>',
    "serve function web paths (/function/..., /ns/NS/function/...) on this port, an origin apart from the API's and the dashboard's; the API's port then redirects them there",
  )
    .argParser(int)
    .env('ZFAAS_FUNCTIONS_PORT');
const functionsOriginOpt = (): Option =>
  new Option(
    '--functions-origin <url>',
    'where callers reach --functions-port (scheme://host[:port], e.g. https://fn.example.com); default: this host and that port on loopback',
  ).env('ZFAAS_FUNCTIONS_ORIGIN');

// The DB service's address; several (DB services on one PostgreSQL store): comma separated, the next one
// used when one stops answering.
const dbOpt = (): Option =>
  new Option('--db <addrs>', 'DB service address; several on one PostgreSQL store: comma separated, the next used when one stops answering')
    .default('tcp://127.0.0.1:5560')
    .env('ZFAAS_DB');

const policyOpt = (): Option =>
  new Option('--policy <policy>', 'preload policy of this node (runtime: stem cells, and a container kept warm after a call)')
    .choices([...POLICIES])
    .default('runtime')
    .env('ZFAAS_POLICY');

// Where the DB service keeps its records: PostgreSQL at a URL, or (unset) LevelDB in the data folder.
const storeOpt = (): Option =>
  new Option(
    '--store <url>',
    "keep the DB service's records in PostgreSQL (postgres://user:pass@host/db; replicated: postgres://user:pass@h1:5432,h2:5432/db?target_session_attrs=read-write); default: LevelDB in the data folder",
  ).env('ZFAAS_STORE');

const maxContainersOpt = (): Option =>
  new Option('--max-containers <n>', 'containers this node holds at most, of every kind (default: 4 per miniworker, at least 8)')
    .argParser(int)
    .env('ZFAAS_MAX_CONTAINERS');

// How a service writes its logs: the same flag on every service command, read once its options are parsed
// (before the services, and their loggers, are loaded).
const logFormatOpt = (): Option =>
  new Option('--log-format <format>', 'logs as JSON lines or for a person (default: pretty on a terminal, json otherwise)')
    .choices(LOG_FORMATS)
    .env('ZFAAS_LOG_FORMAT');

export function program(): Command {
  const p = new Command('zfaas').description('zfaas: functions as a service over ZeroMQ and Docker').showHelpAfterError();

  p.hook('preAction', (_p, action) => {
    const f = (action.opts() as { logFormat?: string }).logFormat;
    if (f) process.env.ZFAAS_LOG_FORMAT = f;
  });

  p.command('up')
    .description('start db, api and one instance with its miniworkers on this machine')
    .addOption(logFormatOpt())
    .addOption(new Option('--port <port>', 'REST API port').argParser(int).default(3000).env('ZFAAS_PORT'))
    .addOption(new Option('--host <host>', 'REST API listen address').default('127.0.0.1').env('ZFAAS_HOST'))
    .addOption(new Option('--data <dir>', 'data folder').default('./data').env('ZFAAS_DATA'))
    .addOption(storeOpt())
    .addOption(new Option('--miniworkers <n>', 'miniworkers on this node').argParser(int).default(4).env('ZFAAS_MINIWORKERS'))
    .addOption(maxContainersOpt())
    .addOption(policyOpt())
    .addOption(
      new Option('--db-bind <addr>', 'DB service address (default: ipc://DATA/run/db.sock, a folder only this user may enter)').env(
        'ZFAAS_DB_BIND',
      ),
    )
    .addOption(
      new Option('--broker-bind <addr>', 'node broker address (default: ipc://DATA/run/broker.sock; beyond loopback: CURVE keys)').env(
        'ZFAAS_BROKER_BIND',
      ),
    )
    .addOption(new Option('--curve-secret-key <z85>', 'CURVE secret key of this service (see zfaas keys)').env('ZFAAS_CURVE_SECRET'))
    .addOption(
      new Option('--curve-allowed <keys>', 'CURVE public keys of the instances let in, comma separated').env('ZFAAS_CURVE_ALLOWED'),
    )
    .addOption(callbackAllowOpt())
    .addOption(functionNetworkAllowOpt())
    .addOption(secretsKeyOpt())
    .addOption(
      new Option(
        '--backup-key-file <file>',
        'file holding the key backups are encrypted with (made on first start; or the key itself in ZFAAS_BACKUP_KEY); default ~/.config/zfaas/backup.key',
      ).env('ZFAAS_BACKUP_KEY_FILE'),
    )
    .addOption(functionsPortOpt())
    .addOption(functionsOriginOpt())
    // Read by the ./zfaas script, which prepares a Docker engine for `up` when none answers (as root).
    .option('--no-setup', 'from ./zfaas: do not prepare a Docker engine when none answers (env ZFAAS_NO_SETUP=1)')
    .addHelpText(
      'after',
      '\nExample:\n  zfaas up --port 3000 --data ./data --miniworkers 4 --policy function\n  ZFAAS_TOKEN=$(openssl rand -base64 24) zfaas up --host 0.0.0.0   # beyond loopback a token (16 characters or more) is required\n  zfaas up --callback-allow loopback,10.0.0.0/8,hooks.example.com:443   # where callbacks may go\n  zfaas up --functions-port 3001   # function web paths on their own origin, http://127.0.0.1:3001',
    )
    .action(
      (o: {
        port: number;
        host: string;
        data: string;
        store?: string;
        miniworkers: number;
        maxContainers?: number;
        policy: Policy;
        dbBind?: string;
        brokerBind?: string;
        curveSecretKey?: string;
        curveAllowed?: string;
        callbackAllow?: string;
        functionNetworkAllow?: string;
        secretsKeyFile?: string;
        backupKeyFile?: string;
        functionsPort?: number;
        functionsOrigin?: string;
      }) => serve(async () => (await services()).up({ ...o, data: resolve(o.data), token: apiToken(p), curveSecret: o.curveSecretKey })),
    );

  p.command('db')
    .description('run the DB service (LevelDB, or PostgreSQL with --store, behind ZeroMQ)')
    .addOption(logFormatOpt())
    .addOption(new Option('--bind <addr>', 'address to bind').default('tcp://127.0.0.1:5560').env('ZFAAS_DB_BIND'))
    .addOption(new Option('--data <dir>', 'LevelDB folder').default('./data/db').env('ZFAAS_DB_DATA'))
    .addOption(storeOpt())
    .addOption(new Option('--curve-secret-key <z85>', 'CURVE secret key of this service (see zfaas keys)').env('ZFAAS_CURVE_SECRET'))
    .addOption(
      new Option('--curve-allowed <keys>', 'CURVE public keys of the instances let in, comma separated').env('ZFAAS_CURVE_ALLOWED'),
    )
    .addOption(secretsKeyOpt())
    .addHelpText(
      'after',
      '\nExamples:\n  zfaas db --bind tcp://127.0.0.1:5560 --data ./data/db --secrets-key-file /etc/zfaas/secrets.key\n  zfaas db --bind tcp://127.0.0.1:5560 --store postgres://zfaas:PASSWORD@db-host/zfaas',
    )
    .action((o: { bind: string; data: string; store?: string; curveSecretKey?: string; curveAllowed?: string; secretsKeyFile?: string }) =>
      serve(async () =>
        (await services()).startDb({
          bind: o.bind,
          data: resolve(o.data),
          store: o.store,
          curveSecret: o.curveSecretKey,
          curveAllowed: o.curveAllowed,
          secretsKeyFile: o.secretsKeyFile,
        }),
      ),
    );

  p.command('api')
    .description('run the REST API and the node broker')
    .addOption(logFormatOpt())
    .addOption(new Option('--port <port>', 'REST API port').argParser(int).default(3000).env('ZFAAS_PORT'))
    .addOption(new Option('--host <host>', 'REST API listen address').default('127.0.0.1').env('ZFAAS_HOST'))
    .addOption(dbOpt())
    .addOption(
      new Option('--api-id <id>', 'this API among several on one PostgreSQL store (default: host name and a random suffix)').env(
        'ZFAAS_API_ID',
      ),
    )
    .addOption(
      new Option('--broker-bind <addr>', 'address instances connect to (beyond loopback: CURVE keys)')
        .default('tcp://0.0.0.0:5561')
        .env('ZFAAS_BROKER_BIND'),
    )
    .option('--no-builtins', 'do not register the built-in node and python runtimes')
    .addOption(new Option('--curve-secret-key <z85>', 'CURVE secret key of this service (see zfaas keys)').env('ZFAAS_CURVE_SECRET'))
    .addOption(
      new Option('--curve-allowed <keys>', 'CURVE public keys of the instances let in, comma separated').env('ZFAAS_CURVE_ALLOWED'),
    )
    .addOption(callbackAllowOpt())
    .addOption(functionsPortOpt())
    .addOption(functionsOriginOpt())
    .addHelpText(
      'after',
      '\nExample:\n  zfaas api --db tcp://db-1:5560,tcp://db-2:5560   # DB services on one PostgreSQL store: the next when one stops answering\n  zfaas api --port 3000 --db tcp://127.0.0.1:5560 --broker-bind tcp://0.0.0.0:5561 --curve-secret-key "$API_SECRET" --curve-allowed "$NODE_PUBLIC"\n  zfaas api --callback-allow loopback,10.0.0.0/8,*.hooks.example.com   # where callbacks may go',
    )
    .action(
      (o: {
        port: number;
        host: string;
        db: string;
        apiId?: string;
        brokerBind: string;
        builtins: boolean;
        curveSecretKey?: string;
        curveAllowed?: string;
        callbackAllow?: string;
        functionsPort?: number;
        functionsOrigin?: string;
      }) => serve(async () => (await services()).startApi({ ...o, token: apiToken(p), curveSecret: o.curveSecretKey })),
    );

  p.command('instance')
    .description('run a node: registers with the API and runs calls in containers')
    .addOption(logFormatOpt())
    .addOption(
      new Option('--broker <addrs>', 'the API broker address; several APIs: comma separated, linked to all at once')
        .default('tcp://127.0.0.1:5561')
        .env('ZFAAS_BROKER'),
    )
    .addOption(dbOpt())
    .addOption(new Option('--data <dir>', 'local cache folder').default('./data/instance').env('ZFAAS_INSTANCE_DATA'))
    .addOption(new Option('--miniworkers <n>', 'miniworker processes').argParser(int).default(4).env('ZFAAS_MINIWORKERS'))
    .addOption(new Option('--node-id <id>', 'node id (default: kept in the data folder)').env('ZFAAS_NODE_ID'))
    .addOption(maxContainersOpt())
    .addOption(policyOpt())
    .option('--no-build-images', 'do not build missing built-in runtime images')
    .addOption(new Option('--registry <host:port>', 'private registry to pull missing runtime images from').env('ZFAAS_REGISTRY'))
    .addOption(new Option('--label <k=v...>', 'node labels (repeatable)').env('ZFAAS_LABELS'))
    .addOption(new Option('--curve-secret-key <z85>', 'CURVE secret key of this node (see zfaas keys)').env('ZFAAS_CURVE_SECRET'))
    .addOption(new Option('--curve-server-key <z85>', 'CURVE public key of the API and DB service').env('ZFAAS_CURVE_SERVER_KEY'))
    .addOption(functionNetworkAllowOpt())
    .addHelpText(
      'after',
      '\nExample:\n  zfaas instance --broker tcp://api-host:5561 --db tcp://api-host:5560 --miniworkers 4 --policy function\n  zfaas instance --broker tcp://api-1:5561,tcp://api-2:5561 --db tcp://db-1:5560,tcp://db-2:5560   # several APIs and DB services\n  zfaas instance --function-network-allow 10.1.2.0/24:5432,pypi.internal   # beyond the internet, network=true functions reach these',
    )
    .action(
      (o: {
        broker: string;
        db: string;
        data: string;
        miniworkers: number;
        maxContainers?: number;
        policy: Policy;
        nodeId?: string;
        buildImages: boolean;
        registry?: string;
        label?: string[] | string;
        curveSecretKey?: string;
        curveServerKey?: string;
        functionNetworkAllow?: string;
      }) =>
        serve(async () =>
          (await services()).startInstance({
            ...o,
            data: resolve(o.data),
            label: typeof o.label === 'string' ? [o.label] : o.label,
            curveSecret: o.curveSecretKey,
            curveServerKey: o.curveServerKey,
          }),
        ),
    );

  p.command('keys')
    .description('print a new CURVE key pair (JSON) for securing node links')
    .addHelpText(
      'after',
      '\nExample:\n  zfaas keys > api-keys.json   # give publicKey to the instances, keep secretKey on the API and DB hosts',
    )
    .action(async () => {
      const { newKeyPair } = await import('../common/curve.js');
      console.log(JSON.stringify(newKeyPair(), null, 2));
    });

  p.command('push-images')
    .description('push the built-in runtime images to the private registry nodes pull from')
    .requiredOption('--registry <host:port>', 'the registry address', process.env.ZFAAS_REGISTRY)
    .addHelpText('after', '\nExample:\n  zfaas push-images --registry 10.0.0.1:5000')
    .action((o: { registry: string }) =>
      (async () => (await services()).pushBuiltinImages(o))().catch((e: unknown) => {
        console.error(`zfaas: ${errText(e)}`);
        process.exit(1);
      }),
    );

  registerBackupCommands(p); // before the client commands: they set every command's usage exit code
  registerClientCommands(p);
  return p;
}

try {
  settingsFromFiles();
} catch (e) {
  console.error(`zfaas: ${errText(e)}`);
  process.exit(2);
}
program()
  .parseAsync(process.argv)
  .catch((e) => {
    console.error(`zfaas: ${printable(errText(e))}`);
    process.exit(1);
  });
