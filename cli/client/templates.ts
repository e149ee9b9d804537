// The files `zfaas init` writes: the smallest function that deploys and runs as is on the built-in
// runtimes (no dependencies to fetch, since containers have no network). `node`, `python`, `java` and `go`
// are zfaas's own form (params in, a value out; Go's in the Lambda style); `lambda`, `openwhisk`, `openfaas` and `gcf` are a web
// hello-world in that platform's own convention (protocol/loader.ts, "Web calls"), with a zfaas.json
// telling `zfaas deploy` the runtime, format and handler that load it (runtimes/node/loader.js).

import { dockerfileTemplate } from './template-dockerfile.js';

export type TemplateRuntime = 'node' | 'python' | 'java' | 'go';
export const TEMPLATE_RUNTIMES: readonly TemplateRuntime[] = ['node', 'python', 'java', 'go'];

export type Template = TemplateRuntime | 'lambda' | 'openwhisk' | 'openfaas' | 'gcf' | 'dockerfile';
export const TEMPLATES: readonly Template[] = ['node', 'python', 'java', 'go', 'lambda', 'openwhisk', 'openfaas', 'gcf', 'dockerfile'];

/** The runtime a template's code is written for. */
export const templateRuntime = (t: Template): TemplateRuntime => (t === 'python' || t === 'java' || t === 'go' ? t : 'node');

/** Whether the template answers web requests in a platform's own form (then invoke it with --path). */
export const isWebTemplate = (t: Template): boolean => !(TEMPLATE_RUNTIMES as readonly string[]).includes(t);

// Every template leaves zfaas.json out of the archive: it is for `zfaas deploy`, not for the function.
const NODE_IGNORE = `# Left out of the archive by "zfaas deploy" (gitignore-like patterns).
# Containers have no network: dependencies travel in the archive, so node_modules is NOT ignored.
.git/
.env
*.log
test/
/zfaas.json
`;

const PYTHON_IGNORE = `# Left out of the archive by "zfaas deploy" (gitignore-like patterns).
.git/
.env
.venv/
__pycache__/
*.pyc
tests/
/zfaas.json
`;

const JAVA_IGNORE = `# Left out of the archive by "zfaas deploy" (gitignore-like patterns).
# Jars the function needs travel in the archive (containers have no network).
.git/
.env
target/
build/
*.log
/zfaas.json
`;

const GO_IGNORE = `# Left out of the archive by "zfaas deploy" (gitignore-like patterns).
# Modules the function needs travel in vendor/ (go mod vendor): containers have no network.
.git/
.env
.zfaas/
*.log
/zfaas.json
`;

const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;
const packageJson = (name: string, main: string): string => json({ name, version: '1.0.0', private: true, main });

/** What `zfaas deploy` reads from a web template's zfaas.json (see cli/pack/defaults.ts). */
const deployDefaults = (format: string, handler?: string): string =>
  json(handler === undefined ? { runtime: 'node', format } : { runtime: 'node', format, handler });

export function templateFiles(name: string, template: Template): Record<string, string> {
  switch (template) {
    case 'dockerfile': // an image, not an archive: a Dockerfile and an HTTP server (template-dockerfile.ts)
      return dockerfileTemplate(name);
    case 'node':
      return {
        'index.js': `'use strict';
// ${name}: a zfaas function. A call's params arrive as \`params\`; what it returns (or resolves to) is
// the result. What it prints is kept as the call's logs ("zfaas logs CALL").
module.exports = async (params) => {
  const name = (params && params.name) || 'world';
  console.log(\`greeting \${name}\`);
  return { hello: name };
};
`,
        'package.json': packageJson(name, 'index.js'),
        '.zfaasignore': NODE_IGNORE,
      };

    case 'python':
      return {
        'handler.py': `# ${name}: a zfaas function. A call's params arrive as \`event\`; what it returns is the result
# (JSON-encoded). What it prints is kept as the call's logs ("zfaas logs CALL").
def handler(event):
    name = (event or {}).get("name", "world")
    print(f"greeting {name}")
    return {"hello": name}
`,
        'requirements.txt': `# One package per line, installed once per version with pip into .deps.
# Containers have no network unless the function is deployed with --network:
# otherwise vendor pure-python packages next to handler.py instead.
`,
        '.zfaasignore': PYTHON_IGNORE,
      };

    case 'java':
      return {
        'Hello.java': `// ${name}: a zfaas function in Java. A call's params arrive as \`params\` (a Map, or any type of your
// own gson can fill); what it returns is the result (JSON-encoded). What it prints is kept as the call's
// logs ("zfaas logs CALL"). The loader compiles this file when the function loads.
import java.util.Map;

public class Hello {
  public Map<String, Object> handleRequest(Map<String, Object> params) {
    Object name = params.getOrDefault("name", "world");
    System.out.println("greeting " + name);
    return Map.of("hello", name);
  }
}
`,
        '.zfaasignore': JAVA_IGNORE,
      };

    case 'go':
      return {
        'main.go': `// ${name}: a zfaas function in Go, in the AWS Lambda style: a call's params arrive as the event (any
// type encoding/json fills), and the value returned is the result (JSON); an error fails the call with its
// message. ctx carries the call's deadline. What it prints is kept as the call's logs ("zfaas logs CALL").
// The go runtime compiles the package at deploy; the handler is the function named Handler.
package main

import (
	"context"
	"fmt"
)

type Params struct {
	Name string \`json:"name"\`
}

func Handler(ctx context.Context, p Params) (map[string]string, error) {
	name := p.Name
	if name == "" {
		name = "world"
	}
	fmt.Println("greeting", name)
	return map[string]string{"hello": name}, nil
}
`,
        'go.mod': `module ${name}\n\ngo 1.19\n`,
        '.zfaasignore': GO_IGNORE,
      };

    case 'lambda':
      return {
        'index.mjs': `// ${name}: an AWS Lambda function (Node.js, ES module) behind an HTTP API. zfaas calls it with
// format lambda: a web request arrives as an API Gateway event (payload 2.0) and the object returned
// is the response. Invoked without a request (zfaas invoke ${name} name=ana), the event is the params.
export const handler = async (event) => {
  const name = event.queryStringParameters?.name ?? event.name ?? 'world';
  console.log(\`greeting \${name}\`);
  return {
    statusCode: 200,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ message: \`Hello, \${name}!\` }),
  };
};
`,
        'package.json': packageJson(name, 'index.mjs'),
        '.zfaasignore': NODE_IGNORE,
        'zfaas.json': deployDefaults('lambda', 'index.handler'),
      };

    case 'openwhisk':
      return {
        'index.js': `// ${name}: an Apache OpenWhisk web action, a plain script whose main(args) is called. A web
// request's query and body parameters arrive in args (with __ow_method, __ow_path, __ow_headers ...);
// the object returned is the response. zfaas calls it with format openwhisk.
function main(args) {
  const name = args.name || 'stranger';
  console.log(\`greeting \${name}\`);
  return {
    statusCode: 200,
    headers: { 'Content-Type': 'text/plain; charset=utf-8' },
    body: \`Hello, \${name}!\`,
  };
}
`,
        'package.json': packageJson(name, 'index.js'),
        '.zfaasignore': NODE_IGNORE,
        'zfaas.json': deployDefaults('openwhisk', 'index.main'),
      };

    case 'openfaas':
      // No handler setting: package.json's main names handler.js, which exports the function itself.
      return {
        'handler.js': `'use strict';
// ${name}: an OpenFaaS function as the node templates write it: handler.js exports (event, context);
// event holds the request (method, path, query, headers, body) and context builds the response.
// zfaas calls it with format openfaas; invoked without a request, the params are event.body.
module.exports = async (event, context) => {
  const name = (event.query && event.query.name) || (event.body && event.body.name) || 'world';
  console.log(\`greeting \${name}\`);
  return context
    .status(200)
    .headers({ 'Content-Type': 'application/json' })
    .succeed({ message: \`Hello, \${name}!\` });
};
`,
        'package.json': packageJson(name, 'handler.js'),
        '.zfaasignore': NODE_IGNORE,
        'zfaas.json': deployDefaults('openfaas'),
      };

    case 'gcf':
      return {
        'index.js': `'use strict';
// ${name}: a Google Cloud Function (HTTP, Node.js): an Express-like (req, res) handler, exported under
// its entry point's name. zfaas calls it with format gcf; the call ends when the response is sent.
exports.hello = (req, res) => {
  const name = req.query.name || (req.body && req.body.name) || 'World';
  console.log(\`greeting \${name}\`);
  res.status(200).set('Content-Type', 'text/plain; charset=utf-8').send(\`Hello, \${name}!\`);
};
`,
        'package.json': packageJson(name, 'index.js'),
        '.zfaasignore': NODE_IGNORE,
        'zfaas.json': deployDefaults('gcf', 'index.hello'),
      };
  }
}
