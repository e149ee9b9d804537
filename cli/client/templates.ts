// The files `zfaas init` writes: the smallest function that deploys and runs as is on the built-in
// runtimes (no dependencies to fetch, since containers have no network).

export type TemplateRuntime = 'node' | 'python';
export const TEMPLATE_RUNTIMES: readonly TemplateRuntime[] = ['node', 'python'];

export function templateFiles(name: string, runtime: TemplateRuntime): Record<string, string> {
  if (runtime === 'node') {
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
      'package.json': `${JSON.stringify({ name, version: '1.0.0', private: true, main: 'index.js' }, null, 2)}\n`,
      '.zfaasignore': `# Left out of the archive by "zfaas deploy" (gitignore-like patterns).
# Containers have no network: dependencies travel in the archive, so node_modules is NOT ignored.
.git/
.env
*.log
test/
`,
    };
  }
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
    '.zfaasignore': `# Left out of the archive by "zfaas deploy" (gitignore-like patterns).
.git/
.env
.venv/
__pycache__/
*.pyc
tests/
`,
  };
}
