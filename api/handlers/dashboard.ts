// The web dashboard: GET / (the page) and /ui/* (its scripts and styles: plain files, no build step), with
// /ui/vendor/uplot.js and uplot.css (uPlot, the charts' library) served from node_modules as installed.
// Open routes (no credentials read): the page holds no data and no secret; everything it shows comes from
// the REST API, which it calls with the token the person pastes into it.
import type { Router, Response } from 'express';
import { createRequire } from 'node:module';
import { dirname, join, resolve, sep } from 'node:path';
import { HttpError } from '../http.js';
import { route, router } from '../routes.js';

// The checkout's api/ folder, whether this runs from api/handlers (sources) or dist/api/handlers (built):
// the static files and openapi.json are not compiled, so they are served from the sources.
const HERE = import.meta.dirname;
export const API_SOURCES = resolve(HERE, ...(HERE.split(sep).includes('dist') ? ['..', '..', '..', 'api'] : ['..']));
const DASHBOARD = join(API_SOURCES, 'dashboard');

// uPlot's built files (its package's dist/ folder), wherever npm put the package; null when it is missing,
// and then the page shows its tables without charts.
function uplotDist(): string | null {
  try {
    return dirname(createRequire(import.meta.url).resolve('uplot'));
  } catch {
    return null;
  }
}
const VENDOR: Record<string, string> = { 'uplot.js': 'uPlot.esm.js', 'uplot.css': 'uPlot.min.css' };
const FILE_RE = /^[a-z0-9][a-z0-9.-]*\.(js|css|html)$/;

// Only our own files run on the page: results and logs are shown as text, and any script a function's
// output might smuggle in would not run anyway.
const CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const secure = (res: Response): void => {
  res.set({ 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' });
};

export function dashboardRouter(): Router {
  const r = router();
  route(r, 'GET', ['/', '/index.html'], 'open', (_req, res, next) => {
    secure(res);
    res.set('cache-control', 'no-cache');
    res.sendFile(join(DASHBOARD, 'index.html'), (e) => e && next(e));
  });
  const uplot = uplotDist();
  // Two fixed names of the package, nothing else of it.
  route(r, 'GET', '/ui/vendor/:file', 'open', (req, res, next) => {
    const name = String(req.params.file);
    const file = Object.hasOwn(VENDOR, name) ? VENDOR[name] : undefined;
    if (!file || !uplot) return next(new HttpError(404, `no file /ui/vendor/${name}`));
    secure(res);
    res.set('cache-control', 'no-cache');
    res.sendFile(join(uplot, file), (e) => e && next(e));
  });
  // The page's own files: one folder, no subfolders, no dot files.
  route(r, 'GET', '/ui/:file', 'open', (req, res, next) => {
    const name = String(req.params.file);
    if (!FILE_RE.test(name)) return next(new HttpError(404, `no file /ui/${name}`));
    secure(res);
    res.set('cache-control', 'no-cache');
    res.sendFile(join(DASHBOARD, name), (e?: Error & { status?: number }) => {
      if (!e) return;
      next(e.status === 404 ? new HttpError(404, `no file /ui/${name}`) : e);
    });
  });
  return r;
}
