import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { JarvisContext } from '../../context.js';

const require = createRequire(import.meta.url);

/**
 * The console's files, read once at start (never on a request): the page's own script (console/ at the project's
 * root, plain JavaScript, no build step) and the small libraries it uses, from node_modules, so the page works
 * offline and behind a firewall.
 */
function assets(): Map<string, { type: string; body: string }> {
  const js = 'text/javascript; charset=utf-8';
  const file = (path: string) => readFileSync(path, 'utf8');
  return new Map([
    ['app.js', { type: js, body: file(new URL('../../../console/app.js', import.meta.url).pathname) }],
    ['console.css', { type: 'text/css; charset=utf-8', body: file(new URL('../../../console/console.css', import.meta.url).pathname) }],
    // The browser builds, next to the entry points the packages export.
    ['preact.mjs', { type: js, body: file(join(dirname(require.resolve('preact')), 'preact.module.js')) }],
    ['hooks.mjs', { type: js, body: file(join(dirname(require.resolve('preact/hooks')), 'hooks.module.js')) }],
    ['htm.mjs', { type: js, body: file(join(dirname(require.resolve('htm')), 'htm.module.js')) }],
    ['uplot.mjs', { type: js, body: file(require.resolve('uplot/dist/uPlot.esm.js')) }],
    ['uplot.css', { type: 'text/css; charset=utf-8', body: file(require.resolve('uplot/dist/uPlot.min.css')) }],
  ]);
}

const page = (showContent: boolean) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Jarvis console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/assets/uplot.css">
<link rel="stylesheet" href="/console/assets/console.css">
<script type="importmap">{"imports":{"preact":"/console/assets/preact.mjs","preact/hooks":"/console/assets/hooks.mjs","htm":"/console/assets/htm.mjs","uplot":"/console/assets/uplot.mjs"}}</script>
</head>
<body data-show-content="${showContent ? '1' : '0'}">
<div id="app"></div>
<script type="module" src="/console/assets/app.js"></script>
</body>
</html>`;

/**
 * GET /console: a live view of sessions and streams (from /v1/events, with the viewer's key), health at a glance
 * (/healthz, and /metrics for the admin scope) and a box to try a barge-in. The page itself needs no key; what
 * it shows comes from the endpoints, which check the key the viewer gives it.
 */
export function consoleRoutes(app: FastifyInstance, ctx: JarvisContext): void {
  const files = assets();
  const html = page(ctx.config.logContent);
  const headers = { 'cache-control': 'no-cache', 'content-security-policy': "default-src 'self'; img-src 'self' data:; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; connect-src 'self'" };
  app.get('/console', async (_request, reply) => reply.headers(headers).type('text/html; charset=utf-8').send(html));
  app.get<{ Params: { name: string } }>('/console/assets/:name', async (request, reply) => {
    const asset = files.get(request.params.name);
    if (!asset) return reply.callNotFound();
    return reply.headers(headers).type(asset.type).send(asset.body);
  });
}
