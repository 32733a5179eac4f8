'use strict';
// Gust's Node runtime: register functions, which the router calls.
//
//   const gust = require('gust');
//   gust.op('food:buy', ({ food }) => ({ success: true, food }));

const { AsyncLocalStorage } = require('node:async_hooks');
const crypto = require('node:crypto');
const http = require('node:http');
const JSONExact = require('./json.js');
const mounts = require('./mount.js');

class GustError extends Error {
  // new gust.Error('Missing comment', { code: 123 }) reaches the caller as {"code": 123, "error": "Missing comment"}.
  constructor(message, { code = 400 } = {}) {
    super(message);
    this.name = 'GustError';
    this.code = code;
  }
}

class Response {
  constructor(body = '', { status = 200, headers = {} } = {}) {
    this.body = body;
    this.status = status;
    this.headers = headers;
  }
}

const registry = {
  ops: new Map(),
  handlers: new Map(), // path -> Map(method -> fn)
  schedules: new Map(), // name -> { kind, spec, params, fn }
  hooks: new Map(), // "event type" -> fn

  manifest() {
    return {
      ops: [...this.ops.keys()].sort().map((name) => ({ name })),
      handlers: [...this.handlers.entries()].sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([path, methods]) => ({ path, methods: [...methods.keys()].sort() })),
      schedules: [...this.schedules.entries()].sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([name, s]) => ({ name, [s.kind]: s.spec, ...(s.params !== undefined ? { params: s.params } : {}) })),
      hooks: [...this.hooks.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, fn]) => {
        const [event, type] = key.split(' ');
        return { event, type, name: fn.name || `${event}_${type}` };
      }),
    };
  },
};

function op(name, fn) {
  if (registry.ops.has(name)) throw new Error(`op ${JSON.stringify(name)} is registered twice`);
  registry.ops.set(name, fn);
  return fn;
}

function handler(path, options, fn) {
  if (typeof options === 'function') [options, fn] = [{}, options];
  const normalized = '/' + String(path).replace(/^\/+|\/+$/g, '');
  const methods = (options.methods || ['GET']).map((m) => m.toUpperCase());
  const routes = registry.handlers.get(normalized) || new Map();
  for (const method of methods) routes.set(method, fn);
  registry.handlers.set(normalized, routes);
  return fn;
}

const EVERY = /^(?:@every\s+)?((?:\d+[smh])+)$/;
const MACROS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);

function checkEvery(spec) {
  const match = EVERY.exec(String(spec).trim());
  const seconds = match ? [...match[1].matchAll(/(\d+)([smh])/g)]
    .reduce((sum, [, n, u]) => sum + Number(n) * { s: 1, m: 60, h: 3600 }[u], 0) : 0;
  if (seconds <= 0) throw new Error(`${JSON.stringify(spec)} is not an interval: write a number with s, m or h, like '30s', '2m' or '@every 1h'`);
}

function checkCron(spec) {
  const text = String(spec).trim();
  if (MACROS.has(text)) return;
  const fields = text.split(/\s+/);
  if (![5, 6].includes(fields.length) || !fields.every((f) => /^[\d*,/-]+$/.test(f))) {
    throw new Error(`${JSON.stringify(spec)} is not a cron expression: 5 fields, 6 with seconds first, or @hourly/@daily/@weekly/@monthly`);
  }
}

function schedule(kind, check) {
  const register = (spec, fn, params) => {
    // gust.every('2m') alone returns a registrar, the closest Node has to a decorator.
    if (fn === undefined) return (later, laterParams) => register(spec, later, laterParams ?? params);
    if (typeof fn !== 'function') {
      throw new TypeError(`gust.${kind}(${JSON.stringify(spec)}, fn): the second argument must be the function to run, not ${fn === null ? 'null' : typeof fn}`);
    }
    const name = fn.name || `${kind}_${registry.schedules.size + 1}`;
    try {
      check(spec);
    } catch (error) {
      throw new Error(`schedule ${name}: ${error.message}`);
    }
    registry.schedules.set(name, { kind, spec: String(spec), params, fn });
    return fn;
  };
  return register;
}

function hook(event) {
  return (type, fn) => {
    registry.hooks.set(`${event} ${type}`, fn);
    return fn;
  };
}

function verifySignature(body, header, secret) {
  // An empty key signs what anyone sends: a secret set empty, or not set, verifies nothing.
  if (secret === undefined || secret === null || secret.length === 0) return false;
  if (!header || !String(header).startsWith('sha256=')) return false;
  const expected = Buffer.from('sha256=' + crypto.createHmac('sha256', secret).update(body).digest('hex'));
  const given = Buffer.from(String(header));
  return expected.length === given.length && crypto.timingSafeEqual(expected, given);
}

// The app's record store from inside functions, over gustd's records channel
// (HTTP on the Unix socket $GUST_RECORDS_SOCKET, authenticated with
// $GUST_RECORDS_TOKEN). Inside a record hook the hook's context travels with
// each call (AsyncLocalStorage), so the hook's own writes do not trigger it again.
const hookContext = new AsyncLocalStorage();

function recordsRequest(method, type, id, { query, body } = {}) {
  // gust/testing's in-memory store, while a test client is open.
  if (records._store) return records._store.request(method, type, id, { query, body });
  const socketPath = process.env.GUST_RECORDS_SOCKET;
  const token = process.env.GUST_RECORDS_TOKEN;
  if (!socketPath || !token) {
    return Promise.reject(new Error('gust.records works inside a Gust instance: GUST_RECORDS_SOCKET is not set'));
  }
  let path = `/v1/records/${encodeURIComponent(type)}`;
  if (id !== undefined && id !== null) path += `/${encodeURIComponent(id)}`;
  if (query) path += `?${new URLSearchParams(query)}`;
  const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
  const context = hookContext.getStore();
  if (context) headers['X-Gust-Hook-Context'] = context;
  const payload = body === undefined ? undefined : Buffer.from(JSONExact.stringify(body));
  if (payload) headers['Content-Length'] = payload.length;
  return new Promise((resolve, reject) => {
    const request = http.request({ socketPath, path, method, headers }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => {
        let value = null;
        try {
          value = chunks.length ? JSONExact.parse(Buffer.concat(chunks).toString('utf8')) : null;
        } catch (e) {
          reject(e);
          return;
        }
        if (response.statusCode >= 400) {
          const message = value && value.error ? value.error : `records ${method} failed with status ${response.statusCode}`;
          reject(new GustError(message, { code: value && value.code ? value.code : response.statusCode }));
        } else {
          resolve(value);
        }
      });
    });
    request.on('error', reject);
    request.end(payload);
  });
}

const records = {
  // gust.records.find('Review', {movie: 'x'}, {order: '-stars', limit: 10}) -> [records]
  async find(type, where = {}, { order, limit } = {}) {
    const query = { where: JSONExact.stringify(where) };
    if (order) query.order = order;
    if (limit) query.limit = String(limit);
    return (await recordsRequest('GET', type, null, { query })).records;
  },
  // A record, or null if there is none with that id.
  async get(type, id) {
    // No record has no id: without one the channel's path would be the type's first page.
    if (id === undefined || id === null || String(id) === '') return null;
    try {
      return await recordsRequest('GET', type, id);
    } catch (e) {
      if (e instanceof GustError && e.code === 404) return null;
      throw e;
    }
  },
  // Creates the record; with an _id, updates it (fields are merged).
  save(type, record) {
    const id = record && record._id;
    return recordsRequest(id ? 'PUT' : 'POST', type, id || null, { body: record });
  },
  async delete(type, recordOrId) {
    const id = recordOrId && typeof recordOrId === 'object' ? recordOrId._id : recordOrId;
    await recordsRequest('DELETE', type, id);
  },
};

// The runtime's own HTTP server, made on first use so that code run at import can
// listen on it before it serves: WebSocket libraries take their upgrades from it,
// as they would from a server of the app's own:
//
//   const { WebSocketServer } = require('ws');
//   const wss = new WebSocketServer({ server: gust.server, path: '/chat' });
//
// gustd hands on a client's Upgrade request and then relays the socket's bytes
// both ways; upgrades to /_gust... and /_/... never reach the listeners.
let server = null;

// gustd forwards request heads of up to 80 KiB (its parser's bound); Node's own is 16 KiB, past which
// it answers without a length and resets the connection, which gustd takes for a broken instance.
const SERVER_OPTIONS = { maxHeaderSize: 96 * 1024 };

// For the runtime (server.js): the server to listen with, and a new one for whoever asks next.
function takeServer() {
  const taken = server || http.createServer(SERVER_OPTIONS);
  server = null;
  return taken;
}

module.exports = {
  get server() {
    if (!server) server = http.createServer(SERVER_OPTIONS);
    return server;
  },
  takeServer,
  Error: GustError,
  Response,
  op,
  handler,
  every: schedule('every', checkEvery),
  cron: schedule('cron', checkCron),
  beforeSave: hook('before_save'),
  afterSave: hook('after_save'),
  beforeDelete: hook('before_delete'),
  afterDelete: hook('after_delete'),
  verifySignature,
  records,
  mount: mounts.mount,
  registry,
  hookContext,
};
