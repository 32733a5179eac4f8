'use strict';
// Serves an app's functions over HTTP/1.1 on the Unix socket $GUST_SOCKET
// (runtime protocol v1, docs/runtime-protocol.md).

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const gust = require('./index.js');

const PROTOCOL = 1;

function loadApp(root) {
  // The app requires 'gust' by name; make that the same module instance as ours.
  require.cache[require.resolve('gust')] = require.cache[require.resolve('./index.js')];
  let main = 'index.js';
  const manifest = path.join(root, 'package.json');
  if (fs.existsSync(manifest)) main = JSON.parse(fs.readFileSync(manifest, 'utf8')).main || main;
  require(path.resolve(root, main));
}

function json(status, value, headers = {}) {
  return { status, headers: { 'Content-Type': 'application/json', ...headers }, body: Buffer.from(JSON.stringify(value)) };
}

// An app's own error codes (LeanCloud style, e.g. 123) travel in the body; the
// HTTP status is the code when it is a client or server error, else 400.
function httpStatus(code) {
  return Number.isInteger(code) && code >= 400 && code <= 599 ? code : 400;
}

function error(code, message, headers = {}) {
  return json(httpStatus(code), { code, error: message }, headers);
}

async function call(kind, name, fn, ...args) {
  try {
    return { value: await fn(...args) };
  } catch (e) {
    if (e instanceof gust.Error) return { failure: error(e.code, e.message) };
    process.stderr.write(`gust: ${kind} ${name} raised:\n${e && e.stack ? e.stack : e}\n`);
    return { failure: error(500, `internal error in ${kind} ${name}`) };
  }
}

function parseObject(body) {
  if (body.length === 0) return {};
  const value = JSON.parse(body.toString('utf8'));
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
  return value;
}

function render(value) {
  if (value instanceof gust.Response) {
    let { body } = value;
    const headers = { ...value.headers };
    if (typeof body === 'string') {
      body = Buffer.from(body);
      headers['Content-Type'] ??= 'text/plain; charset=utf-8';
    } else if (!Buffer.isBuffer(body)) {
      body = Buffer.from(JSON.stringify(body));
      headers['Content-Type'] ??= 'application/json';
    }
    return { status: value.status, headers, body };
  }
  if (Buffer.isBuffer(value)) return { status: 200, headers: { 'Content-Type': 'application/octet-stream' }, body: value };
  if (value === undefined || value === null) return { status: 204, headers: {}, body: Buffer.alloc(0) };
  if (typeof value === 'object') return json(200, value);
  return { status: 200, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: Buffer.from(String(value)) };
}

async function dispatch(method, target, headers, body) {
  const url = new URL(target, 'http://instance');
  // Lenient like Python's unquote: a malformed escape stays as sent (and matches no route).
  let pathname;
  try {
    pathname = decodeURIComponent(url.pathname);
  } catch {
    pathname = url.pathname;
  }
  const { registry } = gust;
  if (pathname === '/_gust/health') return json(200, { ok: true });
  if (pathname === '/_gust/manifest') {
    return json(200, { protocol: PROTOCOL, runtime: `node ${process.version}`, ...registry.manifest() });
  }
  if (pathname.startsWith('/_gust/ops/') && method === 'POST') {
    const name = pathname.slice('/_gust/ops/'.length);
    const fn = registry.ops.get(name);
    if (!fn) return error(404, `no op named ${JSON.stringify(name)}`);
    let args;
    try {
      args = parseObject(body);
    } catch {
      return error(400, "the body must be a JSON object of the op's arguments");
    }
    const { failure, value } = await call('op', name, fn, args);
    return failure || json(200, value === undefined ? null : value);
  }
  if (pathname.startsWith('/_gust/schedules/') && method === 'POST') {
    const name = pathname.slice('/_gust/schedules/'.length);
    const entry = registry.schedules.get(name);
    if (!entry) return error(404, `no schedule named ${JSON.stringify(name)}`);
    let params;
    try {
      params = parseObject(body);
    } catch {
      return error(400, 'the body must be a JSON object of params');
    }
    const { failure } = await call('schedule', name, entry.fn, Object.keys(params).length ? params : (entry.params || {}));
    return failure || json(200, { ok: true });
  }
  if (pathname.startsWith('/_gust/hooks/') && method === 'POST') {
    const [event, type] = pathname.slice('/_gust/hooks/'.length).split('/');
    const fn = registry.hooks.get(`${event} ${type}`);
    if (!fn) return error(404, `no hook ${event}/${type}`);
    let payload;
    try {
      payload = parseObject(body);
    } catch {
      return error(400, 'the body must be a JSON object');
    }
    // Writes the hook makes through gust.records carry its context, so they do not trigger it again.
    const context = headers['x-gust-hook-context'] || null;
    const { failure, value } = await gust.hookContext.run(context, () => call('hook', `${event} ${type}`, fn, payload.record, payload.original ?? null));
    if (failure) return failure;
    return json(200, { record: value && typeof value === 'object' ? value : payload.record });
  }
  if (pathname.startsWith('/_gust/')) return error(404, `no such endpoint ${pathname}`);
  const routes = registry.handlers.get('/' + pathname.replace(/^\/+|\/+$/g, ''));
  if (!routes) return error(404, `no handler for ${pathname}`);
  const fn = routes.get(method) || (method === 'HEAD' ? routes.get('GET') : undefined);
  if (!fn) return error(405, `${method} is not allowed on ${pathname}`, { Allow: [...routes.keys()].sort().join(', ') });
  const request = {
    method,
    path: pathname,
    query: Object.fromEntries(url.searchParams),
    headers,
    body,
    json: () => (body.length ? JSON.parse(body.toString('utf8')) : null),
  };
  const { failure, value } = await call('handler', pathname, fn, request);
  return failure || render(value);
}

function serve(socketPath) {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', async () => {
      let answer;
      try {
        answer = await dispatch(req.method, req.url, req.headers, Buffer.concat(chunks));
      } catch (e) {
        // A bug here must cost one request, not the instance (an unhandled rejection ends the process).
        process.stderr.write(`gust: ${req.method} ${req.url} failed in the runtime:\n${e && e.stack ? e.stack : e}\n`);
        answer = error(500, 'internal error in the runtime');
      }
      res.writeHead(answer.status, { ...answer.headers, 'Content-Length': answer.body.length });
      res.end(req.method === 'HEAD' ? undefined : answer.body);
    });
  });
  server.keepAliveTimeout = 0; // the router keeps its connection as long as it likes
  if (fs.existsSync(socketPath)) fs.unlinkSync(socketPath);
  server.listen(socketPath);
  return server;
}

function main() {
  const socketPath = process.env.GUST_SOCKET;
  if (!socketPath) {
    process.stderr.write('gust: GUST_SOCKET is not set; the runtime is started by gustd\n');
    process.exit(1);
  }
  try {
    loadApp(process.env.GUST_APP_ROOT || process.cwd());
  } catch (e) {
    process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  }
  serve(socketPath);
}

if (require.main === module) main();

module.exports = { dispatch, serve, loadApp };
