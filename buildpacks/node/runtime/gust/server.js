'use strict';
// Serves an app's functions over HTTP/1.1 on the Unix socket $GUST_SOCKET
// (runtime protocol v2, docs/runtime-protocol.md).

const { AsyncLocalStorage } = require('node:async_hooks');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const gust = require('./index.js');
const JSONExact = require('./json.js');
const mounts = require('./mount.js');

const PROTOCOL = 2;

// Protocol 2: gustd names each call in this header, and every line the call
// prints starts with RS + id + US, so gustd credits it to the call's function
// even while calls overlap. The call a piece of code runs for follows it
// through awaits, timers and callbacks (AsyncLocalStorage).
const CALL_HEADER = 'x-gust-call';
const CALL_ID = /^[0-9]{1,20}$/;
const currentCall = new AsyncLocalStorage();
const taggedStreams = new Set();

// Wraps stream.write so that lines written during a call start with its tag.
// A line is tagged once complete (process.stdout.write('a') then ('b\n') is
// one line); what a call leaves unfinished is ended with it (endCall).
function tagOutput(stream) {
  if (stream.gustTagged) return stream.gustTagged;
  const write = stream.write.bind(stream);
  const pending = new Map(); // call id -> text of an unfinished line
  stream.write = function gustTaggedWrite(chunk, encoding, callback) {
    const call = currentCall.getStore();
    if (call === undefined) return write(chunk, encoding, callback);
    if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined];
    const text = (pending.get(call) || '') + (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString(encoding || 'utf8'));
    const end = text.lastIndexOf('\n');
    if (end < 0) {
      pending.set(call, text);
      if (callback) process.nextTick(callback);
      return true;
    }
    pending.delete(call);
    if (end + 1 < text.length) pending.set(call, text.slice(end + 1));
    const tag = `\x1e${call}\x1f`;
    return write(text.slice(0, end).split('\n').map((line) => `${tag}${line}\n`).join(''), 'utf8', callback);
  };
  taggedStreams.add(stream);
  stream.gustTagged = {
    endCall(call) {
      const rest = pending.get(call);
      if (rest === undefined) return;
      pending.delete(call);
      write(`\x1e${call}\x1f${rest}\n`);
    },
  };
  return stream.gustTagged;
}

// Runs fn() as the call callId (a header's value; ignored unless digits).
async function runCall(callId, fn) {
  if (typeof callId !== 'string' || !CALL_ID.test(callId)) return fn();
  try {
    return await currentCall.run(callId, fn);
  } finally {
    for (const stream of taggedStreams) stream.gustTagged.endCall(callId);
  }
}

// Hands the request to a mount if one takes it (true), as the call its X-Gust-Call names: what
// the mount prints is credited to this call however calls overlap, as a function's is. Node emits
// the request's and the answer's events from the connection's own context, so both are bound to
// the call's; what the mount starts from them (timers, promises) follows by itself.
function serveMount(req, res) {
  const pathname = requestPath(req.url);
  if (!mounts.find(pathname, gust.registry.handlers)) return false;
  const callId = req.headers[CALL_HEADER];
  delete req.headers[CALL_HEADER]; // gustd's, as the internal secret is: not the mount's to see
  for (let i = req.rawHeaders.length - 2; i >= 0; i -= 2) {
    if (req.rawHeaders[i].toLowerCase() === CALL_HEADER) req.rawHeaders.splice(i, 2);
  }
  const serveIt = () => mounts.serve(req, res, pathname, gust.registry.handlers);
  if (typeof callId !== 'string' || !CALL_ID.test(callId)) return serveIt();
  return currentCall.run(callId, () => {
    req.emit = AsyncLocalStorage.bind(req.emit);
    res.emit = AsyncLocalStorage.bind(res.emit);
    res.once('close', () => {
      for (const stream of taggedStreams) stream.gustTagged.endCall(callId);
    });
    return serveIt();
  });
}

// The internal surface (/_gust/...) answers only requests carrying this
// instance's secret in this header; gustd passes the secret in the environment.
const INTERNAL_HEADER = 'x-gust-internal';
const INTERNAL_TOKEN_VARIABLE = 'GUST_INTERNAL_TOKEN';
let internalToken = null;

// Moves the secret from the environment into the runtime, so app code and its children never see it.
function takeInternalToken(env = process.env) {
  internalToken = env[INTERNAL_TOKEN_VARIABLE] || null;
  delete env[INTERNAL_TOKEN_VARIABLE];
}

// Whether the request carries this instance's secret (compared in constant time).
function isGustd(headers) {
  const sent = headers[INTERNAL_HEADER];
  if (internalToken === null || typeof sent !== 'string') return false;
  const a = crypto.createHash('sha256').update(sent).digest();
  const b = crypto.createHash('sha256').update(internalToken).digest();
  return crypto.timingSafeEqual(a, b);
}

// Lenient like Python's unquote: a malformed escape stays as sent (and matches no route).
function percentDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return Buffer.from(run.replace(/%/g, ''), 'hex').toString('utf8');
      }
    });
  }
}

// The target's path decoded once, without empty or '.' segments, '..' resolved
// at most to the root: read the same way as gustd's RequestPath, so both agree
// on what is internal. Not parsed as a URL: '//host/x' and '\\' stay a path.
function requestPath(target) {
  const decoded = percentDecode(target.split('?')[0]);
  const segments = [];
  for (const segment of decoded.split('/')) {
    if (segment === '..') segments.pop();
    else if (segment !== '' && segment !== '.') segments.push(segment);
  }
  const trailing = segments.length && (decoded.endsWith('/') || decoded.endsWith('/..')) ? '/' : '';
  return `/${segments.join('/')}${trailing}`;
}

function isInternal(pathname) {
  return pathname.replace(/^\/+/, '').split('/')[0].toLowerCase().startsWith('_gust');
}

function loadApp(root) {
  // The app requires 'gust' by name; make that the same module instance as ours.
  require.cache[require.resolve('gust')] = require.cache[require.resolve('./index.js')];
  let main = 'index.js';
  const manifest = path.join(root, 'package.json');
  if (fs.existsSync(manifest)) main = JSON.parse(fs.readFileSync(manifest, 'utf8')).main || main;
  require(path.resolve(root, main));
}

function json(status, value, headers = {}) {
  return { status, headers: { 'Content-Type': 'application/json', ...headers }, body: Buffer.from(JSONExact.stringify(value)) };
}

// Encodes what user code returned; NaN or an infinity is a 500 that says so (and is logged).
function result(kind, name, value, encode = (v) => json(200, v === undefined ? null : v)) {
  try {
    return encode(value);
  } catch (e) {
    if (!(e instanceof JSONExact.NonFiniteNumberError)) throw e;
    process.stderr.write(`gust: ${kind} ${name} returned NaN or an infinity, which JSON cannot carry\n`);
    return error(500, `${kind} ${name} returned NaN or an infinity, which JSON cannot carry`);
  }
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
  const value = JSONExact.parse(body.toString('utf8'));
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
      body = Buffer.from(JSONExact.stringify(body));
      headers['Content-Type'] ??= 'application/json';
    }
    return { status: value.status, headers, body };
  }
  if (Buffer.isBuffer(value)) return { status: 200, headers: { 'Content-Type': 'application/octet-stream' }, body: value };
  if (value === undefined || value === null) return { status: 204, headers: {}, body: Buffer.alloc(0) };
  if (typeof value === 'object') return json(200, value);
  return { status: 200, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: Buffer.from(String(value)) };
}

// The internal surface: 'METHOD /prefix' -> endpoint(name after the prefix, headers, body).
// A prefix ending in '/' takes a name; the others match the whole path.
const INTERNAL = new Map([
  ['GET /_gust/health', async () => json(200, { ok: true })],
  ['GET /_gust/manifest', async () => json(200, { protocol: PROTOCOL, runtime: `node ${process.version}`, ...gust.registry.manifest() })],
  ['POST /_gust/ops/', op],
  ['POST /_gust/schedules/', schedule],
  ['POST /_gust/hooks/', hook],
]);

async function op(name, headers, body) {
  const fn = gust.registry.ops.get(name);
  if (!fn) return error(404, `no op named ${JSON.stringify(name)}`);
  let args;
  try {
    args = parseObject(body);
  } catch {
    return error(400, "the body must be a JSON object of the op's arguments");
  }
  const { failure, value } = await call('op', name, fn, args);
  return failure || result('op', name, value);
}

async function schedule(name, headers, body) {
  const entry = gust.registry.schedules.get(name);
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

async function hook(name, headers, body) {
  const [event, type] = name.split('/');
  const fn = gust.registry.hooks.get(`${event} ${type}`);
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
  return result('hook', `${event} ${type}`, { record: value && typeof value === 'object' ? value : payload.record });
}

async function internal(method, pathname, headers, body) {
  for (const [key, endpoint] of INTERNAL) {
    const [endpointMethod, prefix] = key.split(' ');
    let name;
    if (prefix.endsWith('/') && pathname.startsWith(prefix) && pathname.length > prefix.length) name = pathname.slice(prefix.length);
    else if (pathname === prefix) name = '';
    else continue;
    if (method === endpointMethod || (method === 'HEAD' && endpointMethod === 'GET')) return endpoint(name, headers, body);
  }
  return error(404, `no such endpoint ${pathname}`);
}

// A handler's answer, or a 500 naming the header it cannot send (one with CR or
// LF would split the answer, and http.ServerResponse would throw).
function checkedHeaders(pathname, answer) {
  for (const [name, value] of Object.entries(answer.headers)) {
    try {
      http.validateHeaderName(name);
      http.validateHeaderValue(name, value);
    } catch {
      process.stderr.write(`gust: handler ${pathname} returned a header that cannot be sent: ${JSON.stringify(name)}: ${JSON.stringify(String(value))}\n`);
      return error(500, `handler ${pathname} returned the header '${name}', whose name or value holds a character a header cannot carry (such as CR or LF)`);
    }
  }
  return answer;
}

async function dispatch(method, target, headers, body) {
  const pathname = requestPath(target);
  if (isInternal(pathname)) {
    // Only gustd holds the secret; to anyone else the internal surface does not exist.
    if (!isGustd(headers)) return error(404, `no handler for ${pathname}`);
    return internal(method, pathname, headers, body);
  }
  const routes = gust.registry.handlers.get('/' + pathname.replace(/^\/+|\/+$/g, ''));
  if (!routes) return error(404, `no handler for ${pathname}`);
  const fn = routes.get(method) || (method === 'HEAD' ? routes.get('GET') : undefined);
  if (!fn) return error(405, `${method} is not allowed on ${pathname}`, { Allow: [...routes.keys()].sort().join(', ') });
  const query = target.includes('?') ? target.slice(target.indexOf('?') + 1) : '';
  const visible = { ...headers };
  delete visible[INTERNAL_HEADER];
  delete visible[CALL_HEADER];
  const request = {
    method,
    path: pathname,
    query: Object.fromEntries(new URLSearchParams(query)),
    headers: visible,
    body,
    json: () => (body.length ? JSONExact.parse(body.toString('utf8')) : null),
  };
  const { failure, value } = await call('handler', pathname, fn, request);
  return failure || checkedHeaders(pathname, result('handler', pathname, value, render));
}

// Hands an Upgrade request (a WebSocket handshake) to the server's 'upgrade' listeners
// (ws, express-ws), without the internal secret; one to Gust's own surface, or to a path
// that a gust.handler serves, is a 404 and never reaches them.
function guardUpgrades(server) {
  const emit = server.emit;
  server.emit = function gustEmit(event, ...args) {
    if (event !== 'upgrade') return emit.call(this, event, ...args);
    const [req, socket] = args;
    const pathname = requestPath(req.url);
    const first = pathname.replace(/^\/+/, '').split('/')[0];
    const handled = gust.registry.handlers.has('/' + pathname.replace(/^\/+|\/+$/g, ''));
    if (first === '_' || first.toLowerCase().startsWith('_gust') || handled || this.listenerCount('upgrade') === 0) {
      const answer = error(404, `no handler for ${pathname}`);
      socket.end(`HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${answer.body.length}\r\nConnection: close\r\n\r\n${answer.body}`);
      return true;
    }
    delete req.headers['x-gust-internal'];
    for (let i = req.rawHeaders.length - 2; i >= 0; i -= 2) {
      if (req.rawHeaders[i].toLowerCase() === 'x-gust-internal') req.rawHeaders.splice(i, 2);
    }
    return emit.call(this, event, ...args);
  };
}

// What Node's server does not take it answers with no length and a destroyed socket: a CONNECT (no
// 'connect' listener), a head past its bound, bytes that are not HTTP. gustd reads a reset as a broken
// instance and stops it with every call in flight on it, so each is answered here, framed, in JSON,
// and the connection ends once the answer is out.
function answerWhatNodeRefuses(server) {
  const refuse = (socket, status, reason, message) => {
    if (!socket.writable) return socket.destroy();
    const body = error(status, message).body;
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    // What the client still sends is read and dropped: a socket closed with bytes unread is reset,
    // and the reset could overtake the answer.
    socket.resume();
    setTimeout(() => socket.destroy(), 5000).unref();
  };
  server.on('connect', (req, socket) => refuse(socket, 405, 'Method Not Allowed', 'Gust functions do not tunnel connections (CONNECT)'));
  server.on('clientError', (err, socket) => {
    if (err && err.code === 'HPE_HEADER_OVERFLOW') return refuse(socket, 431, 'Request Header Fields Too Large', 'the request head is too large');
    if (err && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) return socket.destroy();
    return refuse(socket, 400, 'Bad Request', 'the request is not HTTP/1.1 the runtime reads');
  });
}

// Serves on the listening socket gustd bound (descriptor `listenFd`), or else binds
// `socketPath` itself (a gustd that did not bind one).
function serve(socketPath, listenFd) {
  const server = gust.takeServer();
  guardUpgrades(server);
  answerWhatNodeRefuses(server);
  // How an answer is framed is the runtime's: a handler's own Content-Length, Transfer-Encoding or
  // Connection gave it two lengths, or a length and chunks, which gustd refuses (and replaces the
  // instance for).
  const unframed = (headers) => {
    const kept = {};
    for (const [name, value] of Object.entries(headers || {})) {
      if (!['content-length', 'transfer-encoding', 'connection'].includes(name.toLowerCase())) kept[name] = value;
    }
    return kept;
  };
  server.on('request', (req, res) => {
    if (serveMount(req, res)) return;
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', async () => {
      let answer;
      try {
        answer = await runCall(req.headers[CALL_HEADER], () => dispatch(req.method, req.url, req.headers, Buffer.concat(chunks)));
      } catch (e) {
        // A bug here must cost one request, not the instance (an unhandled rejection ends the process).
        process.stderr.write(`gust: ${req.method} ${req.url} failed in the runtime:\n${e && e.stack ? e.stack : e}\n`);
        answer = error(500, 'internal error in the runtime');
      }
      try {
        res.writeHead(answer.status, { ...unframed(answer.headers), 'Content-Length': answer.body.length });
      } catch (e) {
        // An answer Node will not send (a bad status, say) costs this request, not the instance.
        process.stderr.write(`gust: ${req.method} ${req.url} cannot be answered as returned:\n${e && e.stack ? e.stack : e}\n`);
        answer = error(500, 'internal error in the runtime');
        res.writeHead(answer.status, { ...answer.headers, 'Content-Length': answer.body.length });
      }
      res.end(req.method === 'HEAD' ? undefined : answer.body);
    });
  });
  server.keepAliveTimeout = 0; // the router keeps its connection as long as it likes
  if (listenFd !== undefined) {
    server.listen({ fd: listenFd });
  } else {
    if (fs.existsSync(socketPath)) fs.unlinkSync(socketPath);
    server.listen(socketPath);
  }
  return server;
}

// The descriptor of the listening socket gustd handed over (GUST_LISTEN_FD), taken out of
// the environment before the app loads; undefined when gustd did not bind one.
function inheritedListener(env = process.env) {
  const fd = env.GUST_LISTEN_FD;
  delete env.GUST_LISTEN_FD;
  return fd && /^[0-9]+$/.test(fd) ? Number(fd) : undefined;
}

function main() {
  const socketPath = process.env.GUST_SOCKET;
  const listenFd = inheritedListener();
  if (!socketPath && listenFd === undefined) {
    process.stderr.write('gust: GUST_SOCKET is not set; the runtime is started by gustd\n');
    process.exit(1);
  }
  takeInternalToken();
  tagOutput(process.stdout);
  tagOutput(process.stderr);
  try {
    loadApp(process.env.GUST_APP_ROOT || process.cwd());
  } catch (e) {
    process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  }
  serve(socketPath, listenFd);
}

if (require.main === module) main();

module.exports = { dispatch, serve, inheritedListener, loadApp, takeInternalToken, requestPath, tagOutput, runCall, INTERNAL_TOKEN_VARIABLE };
