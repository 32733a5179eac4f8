'use strict';
// Calls an app's functions in-process as gustd would, for the app's own tests
// (node --test, or any runner):
//
//   const { test, before, after } = require('node:test');
//   const { Client } = require('gust/testing');
//   let client;
//   before(async () => { client = await Client.start({ root: __dirname + '/..' }); });
//   after(() => client.close());
//   test('buy', async () => assert.equal((await client.op('food:buy', { food: 'tuna' })).food, 'tuna'));
//
// The client serves the app with the runtime's own server on a private Unix
// socket and calls it over HTTP as gustd does, so arguments, answers, errors,
// handlers and mounts (Express) behave as deployed. While a client is open,
// gust.records works against an in-memory store (client.records) that runs
// the app's record hooks as gustd does.

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const gust = require('./index.js');
const JSONExact = require('./json.js');
const mounts = require('./mount.js');
const server = require('./server.js');

const TYPE = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

// An app requires 'gust' by name, which gustd's start script resolves through
// NODE_PATH; a test run without it finds this runtime all the same.
try {
  require.resolve('gust');
} catch {
  process.env.NODE_PATH = [path.resolve(__dirname, '..'), process.env.NODE_PATH].filter(Boolean).join(path.delimiter);
  require('node:module').Module._initPaths();
}

class Answer {
  constructor(status, headers, body) {
    this.status = status;
    this.headers = headers; // names lower-case
    this.body = body; // a Buffer
  }

  get text() {
    return this.body.toString('utf8');
  }

  json() {
    return this.body.length ? JSONExact.parse(this.text) : null;
  }
}

// Forgets the app's modules (not its dependencies), so that loading it again registers again.
function forgetApp(root) {
  const prefix = path.resolve(root) + path.sep;
  for (const file of Object.keys(require.cache)) {
    if (file.startsWith(prefix) && !file.slice(prefix.length).split(path.sep).includes('node_modules')) delete require.cache[file];
  }
}

class Client {
  // Starts serving the app. `root`: the app's directory, loaded as gustd loads it
  // (package.json's main, or index.js) after forgetting what was registered before.
  // Without it, the client serves what is already registered (the test required the app).
  static async start({ root } = {}) {
    const client = new Client();
    if (root !== undefined) {
      for (const map of [gust.registry.ops, gust.registry.handlers, gust.registry.schedules, gust.registry.hooks]) map.clear();
      mounts.mounts.length = 0;
      forgetApp(root);
      server.loadApp(root);
    }
    client.secret = crypto.randomBytes(16).toString('hex');
    server.takeInternalToken({ [server.INTERNAL_TOKEN_VARIABLE]: client.secret });
    client.directory = fs.mkdtempSync(path.join(os.tmpdir(), 'gust-testing-'));
    client.socketPath = path.join(client.directory, 'gust.sock');
    client.server = server.serve(client.socketPath);
    await new Promise((resolve, reject) => {
      client.server.once('listening', resolve);
      client.server.once('error', reject);
    });
    client.agent = new http.Agent({ keepAlive: true });
    client.records = new MemoryRecords(client);
    client.previousStore = gust.records._store;
    gust.records._store = client.records;
    return client;
  }

  // Stops serving and gives gust.records back.
  async close() {
    if (!this.server) return;
    gust.records._store = this.previousStore;
    this.agent.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
    this.server = null;
    fs.rmSync(this.directory, { recursive: true, force: true });
  }

  // One HTTP request to the app (a handler or a mount): an Answer.
  request(method, target, { query, headers = {}, body, json } = {}) {
    if (json !== undefined) {
      body = JSONExact.stringify(json);
      headers = { 'content-type': 'application/json', ...headers };
    }
    let url = encodeURI(target).replace(/%25([0-9A-Fa-f]{2})/g, '%$1'); // an escape sent stays one
    if (query) url += '?' + (typeof query === 'string' ? query : new URLSearchParams(query));
    return this.send(method.toUpperCase(), url, headers, body === undefined ? Buffer.alloc(0) : Buffer.from(body), false);
  }

  get(target, options) { return this.request('GET', target, options); }
  post(target, options) { return this.request('POST', target, options); }
  put(target, options) { return this.request('PUT', target, options); }
  delete(target, options) { return this.request('DELETE', target, options); }

  // Calls an op with JSON arguments: its result, or a rejection with gust.Error (the caller's code and message).
  op(name, args = {}) {
    return this.internal(`/_gust/ops/${encodeURIComponent(name).replace(/%3A/g, ':')}`, args);
  }

  // Runs a scheduled function now (with its registered params unless others are given).
  async schedule(name, params = {}) {
    await this.internal(`/_gust/schedules/${encodeURIComponent(name)}`, params);
  }

  // Calls a record hook: the record it returns (or the one sent), or a rejection with gust.Error.
  async hook(event, type, record, original = null, context = undefined) {
    const headers = context ? { 'x-gust-hook-context': context } : {};
    return (await this.internal(`/_gust/hooks/${event}/${type}`, { record, original }, headers)).record;
  }

  manifest() {
    return this.internal('/_gust/manifest', undefined, {}, 'GET');
  }

  async internal(target, payload, headers = {}, method = 'POST') {
    const body = payload === undefined ? Buffer.alloc(0) : Buffer.from(JSONExact.stringify(payload));
    const answer = await this.send(method, target, headers, body, true);
    const value = answer.json();
    if (answer.status >= 400) throw new gust.Error(value && value.error ? value.error : `status ${answer.status}`, { code: value && value.code ? value.code : answer.status });
    return value;
  }

  send(method, target, headers, body, internal) {
    const sent = {};
    for (const [name, value] of Object.entries(headers)) {
      if (!name.toLowerCase().startsWith('x-gust-') || name.toLowerCase() === 'x-gust-hook-context') sent[name] = value;
    }
    if (internal) sent['x-gust-internal'] = this.secret;
    sent['content-length'] = body.length;
    return new Promise((resolve, reject) => {
      const request = http.request({ socketPath: this.socketPath, path: target, method, headers: sent, agent: this.agent }, (response) => {
        const chunks = [];
        response.on('data', (chunk) => chunks.push(chunk));
        response.on('end', () => resolve(new Answer(response.statusCode, response.headers, Buffer.concat(chunks))));
        response.on('error', reject);
      });
      request.on('error', reject);
      request.end(body);
    });
  }
}

// An in-memory record store that answers gust.records as gustd's does, hooks
// included. records.all(type) lists what is stored; find/get/save/delete are
// gust.records' own calls, for setting up and checking tests.
class MemoryRecords {
  constructor(client) {
    this.client = client;
    this.types = new Map(); // type -> Map(id -> record)
    this.after = new Set(); // "type id" of after-hooks in progress: their writes to that record skip hooks
  }

  all(type) {
    return [...(this.types.get(type) || new Map()).values()].map(copy);
  }

  find(...args) { return this.through('find', args); }
  get(...args) { return this.through('get', args); }
  save(...args) { return this.through('save', args); }
  delete(...args) { return this.through('delete', args); }

  // gust.records' methods, sent here even when another store is in use.
  async through(method, args) {
    const previous = gust.records._store;
    gust.records._store = this;
    try {
      return await gust.records[method](...args);
    } finally {
      gust.records._store = previous;
    }
  }

  // The records channel's requests (index.js's recordsRequest).
  async request(method, type, id, { query, body } = {}) {
    if (!TYPE.test(String(type))) throw new gust.Error(`bad record type ${JSON.stringify(type)}: a letter, then letters, digits and _`, { code: 400 });
    const context = gust.hookContext.getStore() || null;
    if (body !== undefined) body = copy(body);
    if (method === 'GET' && (id === null || id === undefined)) return { records: this.select(type, query || {}) };
    if (method === 'GET') return copy(this.stored(type, id));
    if (method === 'POST' || method === 'PUT') return this.write(type, id || null, body || {}, context);
    if (method === 'DELETE') {
      await this.remove(type, id, context);
      return { deleted: id };
    }
    throw new gust.Error(`${method} is not a records method`, { code: 405 });
  }

  stored(type, id) {
    const record = (this.types.get(type) || new Map()).get(id);
    if (!record) throw new gust.Error(`no ${type} with id ${id}`, { code: 404 });
    return record;
  }

  select(type, query) {
    const where = JSONExact.parse(query.where || '{}');
    let found = [...(this.types.get(type) || new Map()).values()]
      .filter((r) => Object.entries(where).every(([k, v]) => (v === null ? r[k] === undefined || r[k] === null : r[k] === v)));
    if (query.order) {
      const field = query.order.replace(/^-/, '');
      const sign = query.order.startsWith('-') ? -1 : 1;
      const present = found.filter((r) => r[field] !== undefined && r[field] !== null)
        .sort((a, b) => (a[field] < b[field] ? -sign : a[field] > b[field] ? sign : 0));
      found = [...present, ...found.filter((r) => r[field] === undefined || r[field] === null)];
    }
    return found.slice(0, Number(query.limit || 100)).map(copy);
  }

  hooksApply(event, type, context, id) {
    if (!gust.registry.hooks.has(`${event} ${type}`)) return false;
    if (context && context.startsWith('before:')) return false; // a before-hook's writes join its write, hook-free
    return !(context && id && this.after.has(`${type} ${id}`));
  }

  async write(type, id, fields, context) {
    const original = id ? copy(this.stored(type, id)) : null;
    let record = { ...(original || {}) };
    for (const [key, value] of Object.entries(fields)) if (!key.startsWith('_')) record[key] = value;
    if (id) record._id = id;
    if (this.hooksApply('before_save', type, context, id)) {
      record = await this.client.hook('before_save', type, record, original, `before:${type}`);
    }
    const now = new Date().toISOString();
    const stored = Object.fromEntries(Object.entries(record).filter(([key]) => !key.startsWith('_')));
    stored._id = id || crypto.randomBytes(8).toString('hex');
    stored._created_at = original ? original._created_at : now;
    stored._updated_at = now;
    if (!this.types.has(type)) this.types.set(type, new Map());
    this.types.get(type).set(stored._id, stored);
    if (this.hooksApply('after_save', type, context, stored._id)) await this.runAfter('after_save', type, stored, original);
    return copy(stored);
  }

  async remove(type, id, context) {
    const original = copy(this.stored(type, id));
    if (this.hooksApply('before_delete', type, context, id)) await this.client.hook('before_delete', type, original, original, `before:${type}`);
    this.types.get(type).delete(id);
    if (this.hooksApply('after_delete', type, context, id)) await this.runAfter('after_delete', type, original, original);
  }

  async runAfter(event, type, record, original) {
    const key = `${type} ${record._id}`;
    this.after.add(key);
    try {
      await this.client.hook(event, type, copy(record), original, `after:${type}`);
    } catch (e) {
      process.stderr.write(`${event} ${type} failed; the write stands: ${e.message}\n`);
    } finally {
      this.after.delete(key);
    }
  }
}

function copy(value) {
  return JSONExact.parse(JSONExact.stringify(value));
}

module.exports = { Client, Answer, MemoryRecords };
