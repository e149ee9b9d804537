// `zfaas init NAME --template dockerfile`: a folder holding a Dockerfile and a small HTTP server (Node's
// own http module, no dependencies) that serves on $PORT, the contract of container-image functions. It
// answers web calls (GET /?name=ana, any path) and JSON calls (POST / with {"name": "ana"}) alike.
// `zfaas deploy NAME ./NAME` builds it and deploys it.
export function dockerfileTemplate(name: string): Record<string, string> {
  return {
    Dockerfile: `# ${name}: a container-image function. Any image works that serves HTTP on $PORT (8080 unless
# deployed with --port); zfaas starts its ENTRYPOINT/CMD, waits until it listens, and sends it each call.
# The base is zfaas's node image, which a zfaas node already has; node:20-slim from Docker Hub works too.
FROM zfaas/node:latest
WORKDIR /app
COPY server.js /app/server.js
# zfaas runs it as this user (an image that says root runs as uid 1000), with a read-only root: write to /tmp.
USER 1000
CMD ["node", "/app/server.js"]
`,
    'server.js': `'use strict';
// ${name}: an HTTP server on $PORT. A web call (/function/${name}/any/path?name=ana) arrives as it came;
// a JSON call (zfaas invoke ${name} name=ana) arrives as POST / with the params as its JSON body, and the
// JSON it answers is the call's result. What it prints during a call is kept as the call's logs.
const http = require('node:http');

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const url = new URL(req.url, 'http://localhost');
    let body = {};
    try {
      body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
    } catch {
      body = {};
    }
    const who = url.searchParams.get('name') || (body && body.name) || 'world';
    console.log(\`greeting \${who} (\${req.method} \${url.pathname})\`);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ message: \`Hello, \${who}!\`, path: url.pathname }));
  });
});

server.listen(Number(process.env.PORT || 8080), () => console.log(\`listening on \${process.env.PORT || 8080}\`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`,
    '.dockerignore': `.git\nnode_modules\n*.log\n`,
  };
}
