'use strict';
// gust.mount: an Express/Connect app beside the app's functions, on the runtime's real server.
//
//   node --test buildpacks/node/runtime/test/

const { test, describe, beforeEach, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const gust = require('../gust/index.js');
const mounts = require('../gust/mount.js');
const { Client } = require('../gust/testing.js');

// Debian's node-express (scripts/install-deps.sh). Its own dependencies are found only on
// NODE_PATH=/usr/share/nodejs (this Node does not search Debian's directory by itself), so
// `make test` runs these tests with it; without it the suite says why it is skipped.
let express = null;
try {
  express = require('express');
} catch {
  express = null;
}

let client;
let logged;
let realWrite;
beforeEach(() => {
  for (const map of [gust.registry.ops, gust.registry.handlers, gust.registry.schedules, gust.registry.hooks]) map.clear();
  mounts.mounts.length = 0;
  logged = '';
  realWrite = process.stderr.write;
  process.stderr.write = (chunk) => {
    logged += String(chunk);
    return true;
  };
});
afterEach(async () => {
  process.stderr.write = realWrite;
  if (client) await client.close();
  client = null;
});

function echo(req, res) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({
      url: req.url, originalUrl: req.originalUrl, baseUrl: req.baseUrl, method: req.method,
      body: Buffer.concat(chunks).toString(), token: req.headers['x-token'] || null,
      internal: req.headers['x-gust-internal'] || null,
    }));
  });
}

// What a mount prints is credited to its own call, as a function's is (protocol 2), and gustd's
// call header is not the mount's to see.
describe('call ids', () => {
  test("a mount's lines carry its call's id, also from its callbacks", async () => {
    const { tagOutput } = require('../gust/server.js');
    const written = [];
    const stream = { write: (chunk) => { written.push(String(chunk)); return true; } };
    tagOutput(stream);
    gust.mount('/', (req, res) => {
      stream.write('printed by the mount\n');
      req.on('data', () => {});
      req.on('end', () => setTimeout(() => {
        stream.write('and later, unfinished');
        res.end(JSON.stringify({ call: req.headers['x-gust-call'] || null }));
      }, 10));
    });
    client = await Client.start();
    // As gustd sends it (the test client leaves gustd's own headers out).
    const answer = await new Promise((resolve, reject) => {
      const request = http.request({ socketPath: client.socketPath, path: '/x', headers: { 'X-Gust-Call': '77' }, agent: false }, (response) => {
        const chunks = [];
        response.on('data', (chunk) => chunks.push(chunk));
        response.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString())));
      });
      request.on('error', reject);
      request.end();
    });
    assert.deepEqual(answer, { call: null });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(written, ['\x1e77\x1fprinted by the mount\n', '\x1e77\x1fand later, unfinished\n']);
  });
});

describe('routing', () => {
  test('a root mount gets every path, with its query and body', async () => {
    gust.mount('/', echo);
    client = await Client.start();
    const answer = await client.post('/users/7', { query: { q: '1' }, body: 'hi', headers: { 'x-token': 't' } });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.json(), {
      url: '/users/7?q=1', originalUrl: '/users/7?q=1', baseUrl: '', method: 'POST', body: 'hi', token: 't', internal: null,
    });
  });

  test('a prefix mount sees the rest of the path, and the prefix in baseUrl', async () => {
    gust.mount('/api/', echo);
    client = await Client.start();
    let seen = (await client.get('/api/users/', { query: 'a=b' })).json();
    assert.deepEqual([seen.url, seen.baseUrl, seen.originalUrl], ['/users/?a=b', '/api', '/api/users/?a=b']);
    seen = (await client.get('/api')).json();
    assert.deepEqual([seen.url, seen.baseUrl], ['/', '/api']);
    assert.equal((await client.get('/apiary')).status, 404); // a prefix is whole segments
  });

  test("Gust's handlers and internal paths stay Gust's", async () => {
    gust.mount('/', echo);
    gust.handler('/hello', () => 'from gust');
    client = await Client.start();
    assert.equal((await client.get('/hello/')).text, 'from gust');
    assert.equal((await client.get('/_gust/manifest')).status, 404); // no secret: it does not exist
    assert.equal((await client.get('/_/functions/x')).status, 404);
    assert.equal((await client.get('/%5Fgust/health')).status, 404);
    const secretSent = await client.send('GET', '/x', { 'x-gust-internal': client.secret }, Buffer.alloc(0), false);
    assert.equal(secretSent.json().internal, null);
  });

  test("mounting over Gust's surface or a non-function is refused", () => {
    for (const prefix of ['/_', '/_/x', '/_gust', '/_GUST/x']) assert.throws(() => gust.mount(prefix, echo), /Gust's own surface/);
    assert.throws(() => gust.mount('/x', {}), /must be an Express or Connect app/);
  });

  test('what the app passes on is a 404, what it throws a 500, and the next request is served', async () => {
    let calls = 0;
    gust.mount('/', (req, res, next) => {
      calls += 1;
      if (calls === 1) return next();
      if (calls === 2) throw new Error('boom');
      if (calls === 3) return next(new Error('passed on'));
      return res.end('ok');
    });
    client = await Client.start();
    assert.equal((await client.get('/a')).status, 404);
    const failed = await client.get('/a');
    assert.deepEqual([failed.status, failed.json().error], [500, 'internal error in mount /']);
    assert.match(logged, /boom/);
    assert.equal((await client.get('/a')).status, 500);
    assert.equal((await client.get('/a')).text, 'ok');
  });
});

describe('express', { skip: express ? false : 'express not found: install node-express (scripts/install-deps.sh) and run with NODE_PATH=/usr/share/nodejs' }, () => {
  test('routes, req.baseUrl and req.path under a prefix; JSON bodies', async () => {
    const app = express();
    app.use(express.json());
    app.get('/users/:id', (req, res) => res.json({ id: req.params.id, baseUrl: req.baseUrl, path: req.path, originalUrl: req.originalUrl }));
    app.post('/echo', (req, res) => res.status(201).json(req.body));
    gust.mount('/api', app);
    gust.op('ping', () => 'pong');
    client = await Client.start();
    assert.deepEqual((await client.get('/api/users/7')).json(), { id: '7', baseUrl: '/api', path: '/users/7', originalUrl: '/api/users/7' });
    const posted = await client.post('/api/echo', { json: { a: 1 } });
    assert.deepEqual([posted.status, posted.json()], [201, { a: 1 }]);
    assert.equal((await client.get('/api/nothing')).status, 404);
    assert.equal(await client.op('ping'), 'pong');
  });
});

describe('over the socket', () => {
  function rawRequest(socketPath, text) {
    const socket = net.connect(socketPath);
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer in 10 s')));
    let seen = '';
    const waiters = [];
    socket.on('data', (chunk) => {
      seen += chunk.toString();
      for (const w of [...waiters]) if (seen.includes(w.marker)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(seen); }
    });
    socket.on('error', (e) => waiters.forEach((w) => w.reject(e)));
    socket.write(text);
    return {
      socket,
      until: (marker) => new Promise((resolve, reject) => {
        if (seen.includes(marker)) resolve(seen);
        else waiters.push({ marker, resolve, reject });
      }),
    };
  }

  test('the first chunk reaches the caller before the handler ends', async () => {
    let release;
    const released = new Promise((resolve) => { release = resolve; });
    gust.mount('/', async (req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('first');
      await released;
      res.end('second');
    });
    client = await Client.start();
    const { socket, until } = rawRequest(client.socketPath, 'GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
    const first = await until('first');
    assert.match(first, /Transfer-Encoding: chunked/);
    assert.ok(!first.includes('second'));
    release();
    assert.match(await until('0\r\n\r\n'), /second/);
    socket.destroy();
  });

  test("framing headers a handler sets are the runtime's own", async () => {
    // Node wrote the handler's Content-Length and its own: an answer with two lengths, which gustd
    // refuses (a 502, and the instance replaced, on every call of that handler).
    gust.handler('h', () => new gust.Response('body', {
      headers: { 'content-length': '999', 'Transfer-Encoding': 'chunked', Connection: 'close', 'X-Kept': '1' },
    }));
    client = await Client.start();
    const { socket, until } = rawRequest(client.socketPath, 'GET /h HTTP/1.1\r\nHost: x\r\n\r\n');
    try {
      const seen = await until('\r\n\r\n');
      const head = seen.split('\r\n\r\n')[0].toLowerCase();
      assert.equal(head.split('content-length:').length - 1, 1, seen);
      assert.match(head, /content-length: 4/);
      assert.ok(!head.includes('transfer-encoding'), seen);
      assert.match(head, /x-kept: 1/);
    } finally {
      socket.destroy();
    }
  });

  test('the request body reaches the app as it arrives', async () => {
    gust.mount('/', (req, res) => {
      res.writeHead(200);
      req.once('data', (chunk) => {
        res.write(`got ${chunk}`);
        req.on('data', (more) => res.write(` then ${more}`));
        req.on('end', () => res.end());
      });
    });
    client = await Client.start();
    const { socket, until } = rawRequest(client.socketPath, 'POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello');
    await until('got hello'); // answered from the first half: the second is not sent yet
    socket.write('world');
    await until('then world');
    socket.destroy();
  });
});
