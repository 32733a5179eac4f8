'use strict';
// The Node runtime in-process: gust's registration functions and server.dispatch.
//
//   node --test buildpacks/node/runtime/test/
//
// buildpacks/protocol-tests/run.py checks the same protocol over a real socket.

const { test, describe, beforeEach, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const gust = require('../gust/index.js');
const { dispatch, serve, takeInternalToken, INTERNAL_TOKEN_VARIABLE } = require('../gust/server.js');

const RUNTIME = path.resolve(__dirname, '..');

// The registry is a module singleton: every test starts from an empty one, and
// what the runtime logs for failing user code is captured instead of printed.
let logged;
let realWrite;
beforeEach(() => {
  for (const map of [gust.registry.ops, gust.registry.handlers, gust.registry.schedules, gust.registry.hooks]) map.clear();
  takeInternalToken({ [INTERNAL_TOKEN_VARIABLE]: SECRET });
  logged = '';
  realWrite = process.stderr.write;
  process.stderr.write = (chunk) => {
    logged += String(chunk);
    return true;
  };
});
afterEach(() => {
  process.stderr.write = realWrite;
});

// Calls as gustd does: internal paths with the instance's secret, unless headers are given.
const SECRET = 'test-secret';
async function call(method, target, body = '', headers = undefined) {
  if (headers === undefined) headers = target.startsWith('/_gust') ? { 'x-gust-internal': SECRET } : {};
  const raw = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const answer = await dispatch(method, target, headers, raw);
  assert.ok(Buffer.isBuffer(answer.body), 'dispatch answers a Buffer body');
  return answer;
}

async function callJSON(method, target, body, headers) {
  const answer = await call(method, target, body, headers);
  assert.equal(answer.headers['Content-Type'], 'application/json', answer.body.toString());
  return { status: answer.status, headers: answer.headers, json: JSON.parse(answer.body.toString()) };
}

describe('registration', () => {
  test('op registers and returns the function', () => {
    const buy = ({ food }) => food;
    assert.equal(gust.op('food:buy', buy), buy);
    assert.equal(gust.registry.ops.get('food:buy'), buy);
  });

  test('an op registered twice is an error', () => {
    gust.op('twice', () => 1);
    assert.throws(() => gust.op('twice', () => 2), /"twice" is registered twice/);
  });

  test('handler normalizes the path and methods, GET by default', () => {
    const feed = () => 'ok';
    const about = () => 'about';
    gust.handler('/cat/feed/', { methods: ['get', 'Post'] }, feed);
    gust.handler('about', about);
    assert.deepEqual([...gust.registry.handlers.keys()], ['/cat/feed', '/about']);
    assert.deepEqual([...gust.registry.handlers.get('/cat/feed')], [['GET', feed], ['POST', feed]]);
    assert.deepEqual([...gust.registry.handlers.get('/about')], [['GET', about]]);
  });

  test('every accepts intervals', () => {
    for (const spec of ['30s', '2m', '1h', '1h30m', '@every 1h', ' 5m ']) {
      const tick = function tick() {};
      assert.equal(gust.every(spec, tick), tick);
      assert.equal(gust.registry.schedules.get('tick').spec, spec);
      assert.equal(gust.registry.schedules.get('tick').kind, 'every');
    }
  });

  test('every rejects bad specs with a helpful message', () => {
    for (const spec of ['2 minutes', '0s', '0m0s', '', '5x', '@every', 'm', '-1m', '1.5m', 120]) {
      assert.throws(() => gust.every(spec, function tick() {}), (error) => {
        assert.match(error.message, /^schedule tick: /);
        assert.match(error.message, /is not an interval/);
        assert.match(error.message, /'30s', '2m' or '@every 1h'/);
        return true;
      }, `spec ${JSON.stringify(spec)}`);
    }
    assert.equal(gust.registry.schedules.size, 0);
  });

  test('every without a function returns a registrar; a non-function is a clear TypeError', () => {
    const tick = function tick() {};
    assert.equal(gust.every('2m')(tick), tick);
    assert.equal(gust.registry.schedules.get('tick').spec, '2m');
    assert.throws(() => gust.every('2m', 'tick'), (error) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /gust\.every\("2m", fn\): the second argument must be the function to run, not string/);
      return true;
    });
    assert.throws(() => gust.cron('@daily', null), /gust\.cron\("@daily", fn\): .* not null/);
  });

  test('cron accepts fields and macros', () => {
    for (const spec of ['*/5 * * * *', '0 9 * * 1-5', '0 0 12 * * *', '0,30 * * * *', '@daily', '@hourly', '@midnight']) {
      gust.cron(spec, function nightly() {});
      assert.deepEqual({ ...gust.registry.schedules.get('nightly'), fn: undefined },
        { kind: 'cron', spec, params: undefined, fn: undefined });
    }
  });

  test('cron rejects bad specs with a helpful message', () => {
    for (const spec of ['* * *', '* * * * * * *', 'every day', '@often', '0 9 * * MON', '']) {
      assert.throws(() => gust.cron(spec, function nightly() {}), (error) => {
        assert.match(error.message, /^schedule nightly: /);
        assert.match(error.message, /is not a cron expression: 5 fields/);
        return true;
      }, `spec ${JSON.stringify(spec)}`);
    }
    assert.equal(gust.registry.schedules.size, 0);
  });

  test('manifest', () => {
    gust.op('b', () => 1);
    gust.op('a', () => 1);
    gust.handler('z', { methods: ['POST', 'GET'] }, () => 1);
    gust.handler('a', () => 1);
    gust.every('2m', function meow() {});
    gust.cron('@daily', function report() {}, { x: 1 });
    gust.beforeSave('cat', function check_cat(record) { return record; }); // eslint-disable-line camelcase
    gust.afterDelete('cat', () => {});
    assert.deepEqual(gust.registry.manifest(), {
      ops: [{ name: 'a' }, { name: 'b' }],
      handlers: [{ path: '/a', methods: ['GET'] }, { path: '/z', methods: ['GET', 'POST'] }],
      schedules: [{ name: 'meow', every: '2m' }, { name: 'report', cron: '@daily', params: { x: 1 } }],
      hooks: [
        { event: 'after_delete', type: 'cat', name: 'after_delete_cat' },
        { event: 'before_save', type: 'cat', name: 'check_cat' },
      ],
    });
  });

  test('gust.Error defaults to code 400', () => {
    const error = new gust.Error('Missing cat name');
    assert.equal(error.message, 'Missing cat name');
    assert.equal(error.code, 400);
    assert.ok(error instanceof Error);
    assert.equal(new gust.Error('No comment', { code: 123 }).code, 123);
  });

  test('records outside an instance says so', async () => {
    await assert.rejects(gust.records.find('cat'), /inside a Gust instance/);
  });
});

describe('verifySignature', () => {
  const secret = 's3cret';
  const body = '{"action": "opened"}';
  const sign = (data, key, algorithm = 'sha256') => `${algorithm}=` + crypto.createHmac(algorithm, key).update(data).digest('hex');

  test('accepts a valid signature', () => {
    assert.equal(gust.verifySignature(body, sign(body, secret), secret), true);
    assert.equal(gust.verifySignature(Buffer.from(body), sign(body, secret), Buffer.from(secret)), true);
  });

  // HMAC with an empty key is one anyone can compute: a config var set empty or not set at all
  // must not let every body in.
  test('an empty or missing secret verifies nothing', () => {
    for (const missing of ['', Buffer.alloc(0), undefined, null]) {
      assert.equal(gust.verifySignature(body, sign(body, ''), missing), false, String(missing));
    }
  });

  test('rejects invalid signatures', () => {
    const good = sign(body, secret);
    for (const header of [undefined, null, '', good.slice('sha256='.length), sign(body, secret, 'sha1'), good.slice(0, -1),
      `${good}0`, good.toUpperCase(), sign(body, 'other'), sign(`${body} `, secret), `sha256=${'é'.repeat(32)}`]) {
      assert.equal(gust.verifySignature(body, header, secret), false, `header ${header}`);
    }
  });
});

describe('dispatch', () => {
  test('health', async () => {
    assert.deepEqual((await callJSON('GET', '/_gust/health')).json, { ok: true });
  });

  test('manifest', async () => {
    gust.op('echo', (args) => args);
    const { status, json } = await callJSON('GET', '/_gust/manifest');
    assert.equal(status, 200);
    assert.equal(json.protocol, 2);
    assert.equal(json.runtime, `node ${process.version}`);
    assert.deepEqual(json.ops, [{ name: 'echo' }]);
    assert.deepEqual([json.handlers, json.schedules, json.hooks], [[], [], []]);
  });

  test('op gets its arguments as an object', async () => {
    gust.op('food:buy', ({ food, count = 1 }) => ({ food, count }));
    assert.deepEqual(await callJSON('POST', '/_gust/ops/food:buy', { food: 'tuna' }),
      { status: 200, headers: { 'Content-Type': 'application/json' }, json: { food: 'tuna', count: 1 } });
    assert.deepEqual((await callJSON('POST', '/_gust/ops/food%3Abuy', { food: 'tuna', count: 2 })).json, { food: 'tuna', count: 2 });
  });

  test('op with no body gets an empty object; async ops are awaited', async () => {
    gust.op('args', async (args) => ({ args }));
    assert.deepEqual((await callJSON('POST', '/_gust/ops/args')).json, { args: {} });
  });

  test('op returning undefined is null', async () => {
    gust.op('nothing', () => {});
    const answer = await call('POST', '/_gust/ops/nothing');
    assert.deepEqual([answer.status, answer.body.toString()], [200, 'null']);
  });

  test('op bodies that are not JSON objects', async () => {
    gust.op('echo', (args) => args);
    for (const body of ['{nope', '[1, 2]', 'null', '3', '"text"', Buffer.from([0xff, 0xfe])]) {
      const { status, json } = await callJSON('POST', '/_gust/ops/echo', body);
      assert.deepEqual([status, json.code], [400, 400], `body ${body}`);
      assert.match(json.error, /JSON object/);
    }
  });

  test('unknown op, and ops must be posted', async () => {
    gust.op('echo', (args) => args);
    assert.deepEqual(await callJSON('POST', '/_gust/ops/nothing', {}),
      { status: 404, headers: { 'Content-Type': 'application/json' }, json: { code: 404, error: 'no op named "nothing"' } });
    assert.equal((await callJSON('GET', '/_gust/ops/echo')).status, 404);
  });

  test('gust.Error with an app code is status 400, the code in the body', async () => {
    gust.op('fail', () => { throw new gust.Error('nope', { code: 123 }); });
    const { status, json } = await callJSON('POST', '/_gust/ops/fail');
    assert.deepEqual([status, json], [400, { code: 123, error: 'nope' }]);
  });

  test('gust.Error with an HTTP code is that status, also when rejected', async () => {
    gust.op('missing', async () => { throw new gust.Error('No salmon in the shop', { code: 404 }); });
    const { status, json } = await callJSON('POST', '/_gust/ops/missing');
    assert.deepEqual([status, json], [404, { code: 404, error: 'No salmon in the shop' }]);
  });

  test('a plain exception is a 500 logged with its stack', async () => {
    gust.op('crash', () => { throw new TypeError('secret-detail'); });
    const answer = await call('POST', '/_gust/ops/crash');
    assert.equal(answer.status, 500);
    assert.deepEqual(JSON.parse(answer.body.toString()), { code: 500, error: 'internal error in op crash' });
    assert.doesNotMatch(answer.body.toString(), /secret-detail|TypeError| at /);
    assert.match(logged, /gust: op crash raised:\nTypeError: secret-detail\n\s+at /);
  });

  test('schedule runs with the body or its params', async () => {
    const runs = [];
    gust.every('1h', function report(params) { runs.push(params); }, { kind: 'hourly' });
    assert.deepEqual((await callJSON('POST', '/_gust/schedules/report')).json, { ok: true });
    assert.deepEqual((await callJSON('POST', '/_gust/schedules/report', { kind: 'manual' })).json, { ok: true });
    assert.deepEqual(runs, [{ kind: 'hourly' }, { kind: 'manual' }]);
  });

  test('schedule failures', async () => {
    gust.every('2m', function broken() { throw new Error('boom'); });
    assert.deepEqual((await callJSON('POST', '/_gust/schedules/broken')).json,
      { code: 500, error: 'internal error in schedule broken' });
    assert.equal((await callJSON('POST', '/_gust/schedules/other')).status, 404);
    assert.equal((await callJSON('POST', '/_gust/schedules/broken', '[]')).status, 400);
  });

  test('hook rejects', async () => {
    gust.beforeSave('cat', (record) => {
      if (!record.name) throw new gust.Error('Missing cat name', { code: 400 });
      return record;
    });
    const { status, json } = await callJSON('POST', '/_gust/hooks/before_save/cat', { record: {}, original: null });
    assert.deepEqual([status, json], [400, { code: 400, error: 'Missing cat name' }]);
  });

  test('hook changes the record and sees the original', async () => {
    const seen = [];
    gust.beforeSave('cat', (record, original) => {
      seen.push(original);
      return { ...record, name: record.name.toUpperCase() };
    });
    const { status, json } = await callJSON('POST', '/_gust/hooks/before_save/cat',
      { record: { name: 'tom' }, original: { name: 'Tom' } });
    assert.deepEqual([status, json], [200, { record: { name: 'TOM' } }]);
    await callJSON('POST', '/_gust/hooks/before_save/cat', { record: { name: 'kit' } });
    assert.deepEqual(seen, [{ name: 'Tom' }, null]);
  });

  test('hook returning nothing keeps the record', async () => {
    gust.afterSave('cat', () => {});
    assert.deepEqual((await callJSON('POST', '/_gust/hooks/after_save/cat', { record: { name: 'tom' } })).json,
      { record: { name: 'tom' } });
  });

  test('unknown hooks, and hook bodies must be objects', async () => {
    gust.beforeSave('cat', (record) => record);
    for (const target of ['/_gust/hooks/before_save/dog', '/_gust/hooks/after_save/cat', '/_gust/hooks/before_save']) {
      assert.equal((await callJSON('POST', target, { record: {} })).status, 404, target);
    }
    assert.equal((await callJSON('POST', '/_gust/hooks/before_save/cat', '[]')).status, 400);
  });

  test('handler answers text with the query', async () => {
    gust.handler('hello', (request) => `hello ${request.query.name || 'world'} by ${request.method} ${request.path}\n`);
    const answer = await call('GET', '/hello');
    assert.deepEqual([answer.status, answer.headers, answer.body.toString()],
      [200, { 'Content-Type': 'text/plain; charset=utf-8' }, 'hello world by GET /hello\n']);
    assert.equal((await call('GET', '/hello/?name=tom')).body.toString(), 'hello tom by GET /hello/\n');
  });

  test('HEAD uses the GET handler', async () => {
    gust.handler('hello', () => 'hi');
    assert.equal((await call('HEAD', '/hello')).status, 200);
  });

  test('method not allowed names the allowed ones', async () => {
    gust.handler('submit', { methods: ['PUT', 'POST'] }, () => 'ok');
    const { status, headers, json } = await callJSON('GET', '/submit');
    assert.deepEqual([status, headers.Allow], [405, 'POST, PUT']);
    assert.deepEqual(json, { code: 405, error: 'GET is not allowed on /submit' });
  });

  test('handler request', async () => {
    const seen = [];
    gust.handler('submit', { methods: ['POST'] }, (request) => {
      seen.push([request.headers['x-hub-signature-256'], request.body.toString()]);
      return { received: request.json() };
    });
    const { status, json } = await callJSON('POST', '/submit', { a: 1 }, { 'x-hub-signature-256': 'sha256=00' });
    assert.deepEqual([status, json], [200, { received: { a: 1 } }]);
    assert.deepEqual(seen, [['sha256=00', '{"a":1}']]);
  });

  test('handler return values', async () => {
    const cases = {
      text: ['hi', 200, { 'Content-Type': 'text/plain; charset=utf-8' }, 'hi'],
      number: [42, 200, { 'Content-Type': 'text/plain; charset=utf-8' }, '42'],
      bytes: [Buffer.from('\x00\x01'), 200, { 'Content-Type': 'application/octet-stream' }, '\x00\x01'],
      json: [[1, 2], 200, { 'Content-Type': 'application/json' }, '[1,2]'],
      none: [undefined, 204, {}, ''],
      'response-text': [new gust.Response('made', { status: 201, headers: { 'X-A': 'b' } }),
        201, { 'X-A': 'b', 'Content-Type': 'text/plain; charset=utf-8' }, 'made'],
      'response-json': [new gust.Response({ a: 1 }, { status: 202 }), 202, { 'Content-Type': 'application/json' }, '{"a":1}'],
      'response-typed': [new gust.Response('<p>', { headers: { 'Content-Type': 'text/html' } }), 200, { 'Content-Type': 'text/html' }, '<p>'],
      'response-empty': [new gust.Response('', { status: 304 }), 304, { 'Content-Type': 'text/plain; charset=utf-8' }, ''],
    };
    for (const [name, [value, status, headers, body]] of Object.entries(cases)) {
      gust.handler(name, () => value);
      const answer = await call('GET', `/${name}`);
      assert.deepEqual([answer.status, answer.headers, answer.body.toString()], [status, headers, body], name);
    }
  });

  test('handler failures', async () => {
    gust.handler('teapot', () => { throw new gust.Error("I'm a teapot", { code: 418 }); });
    gust.handler('broken', () => { throw new Error('secret-detail'); });
    assert.deepEqual(await callJSON('GET', '/teapot'),
      { status: 418, headers: { 'Content-Type': 'application/json' }, json: { code: 418, error: "I'm a teapot" } });
    assert.deepEqual((await callJSON('GET', '/broken')).json, { code: 500, error: 'internal error in handler /broken' });
  });

  test('unknown paths, malformed percent-encoding included', async () => {
    for (const target of ['/', '/nothing', '/_gust/nothing', '/_gust/ops', '/bad%zz', '/%E0%A4%A']) {
      assert.equal((await callJSON('GET', target)).status, 404, target);
    }
  });

  test('percent-encoded handler path', async () => {
    gust.handler('café', (request) => request.path);
    assert.equal((await call('GET', '/caf%C3%A9')).body.toString(), '/café');
  });
});

describe('serve and loadApp', () => {
  function request(socketPath, method, target, body, headers = target.startsWith('/_gust') ? { 'X-Gust-Internal': SECRET } : {}) {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath, method, path: target, headers, agent: false }, (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  test('serves HTTP/1.1 on a Unix socket and survives a failure inside the runtime', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gust-node-'));
    const socketPath = path.join(dir, 'instance.sock');
    fs.writeFileSync(socketPath, 'stale'); // a leftover socket file is replaced
    const server = serve(socketPath);
    try {
      await new Promise((resolve) => server.once('listening', resolve));
      gust.op('echo', (args) => args);
      gust.handler('hello', () => 'hello\n');
      gust.registry.handlers.set('/broken-routes', {}); // not a Map: dispatch itself throws
      const echo = await request(socketPath, 'POST', '/_gust/ops/echo', '{"a":1}');
      assert.deepEqual([echo.status, echo.headers['content-length'], echo.body], [200, '7', '{"a":1}']);
      const head = await request(socketPath, 'HEAD', '/hello');
      assert.deepEqual([head.status, head.headers['content-length'], head.body], [200, '6', '']);
      const broken = await request(socketPath, 'GET', '/broken-routes');
      assert.deepEqual([broken.status, JSON.parse(broken.body)], [500, { code: 500, error: 'internal error in the runtime' }]);
      assert.match(logged, /GET \/broken-routes failed in the runtime/);
      assert.equal((await request(socketPath, 'GET', '/_gust/health')).status, 200);
      // A header Node will not send is refused by name, and the instance keeps serving.
      gust.handler('split', () => new gust.Response('x', { headers: { 'X-Split': 'a\r\nSet-Cookie: evil=1' } }));
      const split = await request(socketPath, 'GET', '/split');
      assert.equal(split.status, 500);
      assert.match(JSON.parse(split.body).error, /'X-Split'/);
      assert.equal((await request(socketPath, 'GET', '/_gust/health')).status, 200);
      assert.equal((await request(socketPath, 'GET', '/_gust/health', undefined, {})).status, 404);
    } finally {
      await new Promise((resolve) => server.close(resolve));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // Node's own bound on a head is 16 KiB; gustd forwards heads up to 80 KiB. Past Node's bound its
  // server answered an unframed 431 and reset the connection, which gustd took for a broken instance
  // and stopped, with every call in flight on it. A CONNECT (which gustd refuses itself) is answered
  // rather than its socket destroyed.
  test('a head as large as gustd forwards is read, and a CONNECT is answered, without a reset', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gust-node-'));
    const socketPath = path.join(dir, 'instance.sock');
    const server = serve(socketPath);
    const raw = (bytes) => new Promise((resolve) => {
      const chunks = [];
      const socket = require('node:net').connect(socketPath, () => socket.end(bytes));
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('error', (e) => resolve({ data: Buffer.concat(chunks).toString(), error: e }));
      socket.on('close', () => resolve({ data: Buffer.concat(chunks).toString(), error: null }));
    });
    try {
      await new Promise((resolve) => server.once('listening', resolve));
      gust.handler('hello', () => 'hello\n');
      const big = await raw(`GET /hello HTTP/1.1\r\nHost: instance\r\nX-Big: ${'a'.repeat(70000)}\r\nContent-Length: 0\r\n\r\n`);
      assert.equal(big.error, null, 'the connection is not reset');
      assert.match(big.data, /^HTTP\/1\.1 200 /);
      const tunnel = await raw('CONNECT /hello HTTP/1.1\r\nHost: instance\r\n\r\n');
      assert.equal(tunnel.error, null, 'the connection is not reset');
      assert.match(tunnel.data, /^HTTP\/1\.1 405 /);
      assert.match(tunnel.data, /Content-Length: \d+/i);
      // Past even gustd's bound: an answer with its length, then the close, still no reset.
      const huge = await raw(`GET /hello HTTP/1.1\r\nHost: instance\r\nX-Big: ${'a'.repeat(200000)}\r\n\r\n`);
      assert.match(huge.data, /^HTTP\/1\.1 431 /);
      assert.match(huge.data, /Content-Length: \d+/i);
    } finally {
      await new Promise((resolve) => server.close(resolve));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  function loadInChild(root) {
    const script = `
      const { loadApp } = require(${JSON.stringify(path.join(RUNTIME, 'gust', 'server.js'))});
      loadApp(process.argv[1]);
      console.log(JSON.stringify(require('gust').registry.manifest()));`;
    return spawnSync(process.execPath, ['-e', script, root],
      { env: { ...process.env, NODE_PATH: RUNTIME }, encoding: 'utf8' });
  }

  test('loadApp loads package.json main, and the app shares the runtime\'s gust', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gust-app-'));
    try {
      fs.writeFileSync(path.join(root, 'package.json'), '{"name": "app", "main": "lib/app.js"}');
      fs.mkdirSync(path.join(root, 'lib'));
      fs.writeFileSync(path.join(root, 'lib', 'app.js'), "require('gust').op('hi', () => 'hi');\n");
      const child = loadInChild(root);
      assert.equal(child.status, 0, child.stderr);
      assert.deepEqual(JSON.parse(child.stdout).ops, [{ name: 'hi' }]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  test('loadApp falls back to index.js', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gust-app-'));
    try {
      fs.writeFileSync(path.join(root, 'package.json'), '{"name": "app"}');
      fs.writeFileSync(path.join(root, 'index.js'), "require('gust').handler('about', () => 'about');\n");
      const child = loadInChild(root);
      assert.equal(child.status, 0, child.stderr);
      assert.deepEqual(JSON.parse(child.stdout).handlers, [{ path: '/about', methods: ['GET'] }]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('the internal surface answers only gustd', () => {
  const SPELLINGS = ['/_gust/manifest', '/%5fgust/manifest', '/%5Fgust/manifest', '//_gust/manifest', '/./_gust/manifest',
    '/x/../_gust/manifest', '/%2e%2e/_gust/manifest', '/_GUST/manifest', '/_Gust/schedules/purge',
    '/_gust/schedules/purge', '/_gust/ops/echo', '/_gust%2fops%2fecho', '/\\_gust/manifest'];

  test('without the secret every spelling is an unknown path', async () => {
    const ran = [];
    gust.op('echo', (args) => ran.push('op'));
    gust.every('2m', function purge(params) { ran.push(['schedule', params]); });
    for (const headers of [{}, { 'x-gust-internal': '' }, { 'x-gust-internal': 'wrong' }, { 'x-gust-internal': `${SECRET}x` }]) {
      for (const target of SPELLINGS) {
        for (const method of ['GET', 'POST']) {
          const { status, json } = await callJSON(method, target, { x: 1 }, headers);
          assert.equal(status, 404, `${method} ${target} ${JSON.stringify(headers)}`);
          assert.match(json.error, /^no handler for/);
        }
      }
    }
    assert.deepEqual(ran, []);
  });

  test('an instance started without a secret answers no one', async () => {
    takeInternalToken({});
    assert.equal((await callJSON('GET', '/_gust/health', '', { 'x-gust-internal': '' })).status, 404);
    assert.equal((await callJSON('GET', '/_gust/health', '', { 'x-gust-internal': 'null' })).status, 404);
  });

  test('with the secret the surface answers', async () => {
    const ran = [];
    gust.every('2m', function purge(params) { ran.push(params); });
    assert.deepEqual((await callJSON('POST', '/_gust/schedules/purge', { all: true })).json, { ok: true });
    assert.deepEqual(ran, [{ all: true }]);
  });

  test('the secret leaves the environment', async () => {
    process.env[INTERNAL_TOKEN_VARIABLE] = 'from-gustd';
    takeInternalToken();
    assert.equal(process.env[INTERNAL_TOKEN_VARIABLE], undefined);
    assert.equal((await callJSON('GET', '/_gust/health', '', { 'x-gust-internal': 'from-gustd' })).status, 200);
  });

  test('a handler never sees the secret', async () => {
    gust.handler('headers', (request) => Object.keys(request.headers).sort());
    const { status, json } = await callJSON('GET', '/headers', '', { 'x-gust-internal': SECRET, 'x-other': '1' });
    assert.deepEqual([status, json], [200, ['x-other']]);
  });
});

describe('JSON numbers', () => {
  test('integers beyond 2^53 stay exact', async () => {
    gust.op('echo', (args) => args);
    const answer = await call('POST', '/_gust/ops/echo', '{"n": 12345678901234567, "m": -9007199254740993, "f": 1.5}');
    assert.deepEqual([answer.status, answer.body.toString()], [200, '{"n":12345678901234567,"m":-9007199254740993,"f":1.5}']);
  });

  test('non-finite numbers in a body are refused', async () => {
    gust.op('echo', (args) => args);
    gust.handler('in', { methods: ['POST'] }, (request) => request.json());
    for (const body of ['{"n": 1e999999}', '{"n": -1e400}', '{"n": NaN}', '{"n": Infinity}', '{"n": -Infinity}']) {
      assert.equal((await callJSON('POST', '/_gust/ops/echo', body)).status, 400, body);
      assert.equal((await call('POST', '/in', body)).status, 500, body);
    }
  });

  test('a body that is not JSON is refused at once, whatever its length, and so are numbers JSON has not', () => {
    const json = require('../gust/json.js');
    // An unterminated string of escaped quotes after 16 digits: the scan for big integers ran from
    // every quote to the end (quadratic: seconds for 80 KB) before JSON.parse refused it.
    const started = process.hrtime.bigint();
    assert.throws(() => json.parse('[1234567890123456,"' + '\\"'.repeat(200_000)), SyntaxError);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    assert.ok(seconds < 5, `took ${seconds} s`);
    for (const text of ['012345678901234567890', '{"n": 01234567890123456789}', '[-012345678901234567]']) {
      assert.throws(() => json.parse(text), SyntaxError, text);
    }
    assert.deepEqual(json.parse('{"phone": "12345678901234567", "n": 12345678901234567}'), { phone: '12345678901234567', n: 12345678901234567n });
  });

  test('a non-finite result is a 500 in valid JSON', async () => {
    gust.op('inf', () => ({ x: Infinity }));
    gust.handler('nan', () => [NaN]);
    for (const [method, target, kind] of [['POST', '/_gust/ops/inf', 'op inf'], ['GET', '/nan', 'handler /nan']]) {
      const { status, json } = await callJSON(method, target);
      assert.deepEqual([status, json], [500, { code: 500, error: `${kind} returned NaN or an infinity, which JSON cannot carry` }]);
    }
    assert.match(logged, /NaN or an infinity/);
  });
});

describe('handler headers', () => {
  test('a header with CR or LF is refused by name', async () => {
    for (const headers of [{ 'X-Split': 'a\r\nSet-Cookie: evil=1' }, { 'X-Split': 'a\nb' }, { 'X-Bad\r\nName': 'v' }, { 'X-Nul': 'a\u0000b' }]) {
      gust.registry.handlers.clear();
      gust.handler('h', () => new gust.Response('body', { headers }));
      const { status, json } = await callJSON('GET', '/h');
      assert.equal(status, 500);
      assert.ok(json.error.includes(`'${Object.keys(headers)[0]}'`), json.error);
    }
    assert.match(logged, /cannot be sent/);
  });

  test('ordinary headers pass', async () => {
    gust.handler('h', () => new gust.Response('ok', { headers: { 'X-Fine': 'a\tb c', 'Set-Cookie': 'a=1' } }));
    const answer = await call('GET', '/h');
    assert.deepEqual([answer.status, answer.headers['X-Fine'], answer.body.toString()], [200, 'a\tb c', 'ok']);
  });
});

// Protocol 2: lines a call prints carry its id, however calls overlap
// (AsyncLocalStorage follows each call through its awaits).
describe('call ids', () => {
  test('overlapping calls each tag their own lines', async () => {
    const { tagOutput, runCall } = require('../gust/server.js');
    const written = [];
    const stream = { write: (chunk) => { written.push(String(chunk)); return true; } };
    tagOutput(stream);
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    const print = (text) => stream.write(text);
    // The first call starts, the second starts later, and the first prints after the second started.
    const first = runCall('1', async () => {
      print('first before\n');
      await sleep(40);
      print('first ');
      print('after\n');
    });
    await sleep(10);
    const second = runCall('2', async () => {
      print('second before\n');
      await sleep(60);
      print('second unfinished');
    });
    await Promise.all([first, second]);
    stream.write('outside\n');
    assert.deepEqual(written, [
      '\x1e1\x1ffirst before\n',
      '\x1e2\x1fsecond before\n',
      '\x1e1\x1ffirst after\n',
      '\x1e2\x1fsecond unfinished\n',
      'outside\n',
    ]);
  });

  test('a call id that is not digits runs the call untagged', async () => {
    const { tagOutput, runCall } = require('../gust/server.js');
    const written = [];
    const stream = { write: (chunk) => { written.push(String(chunk)); return true; } };
    tagOutput(stream);
    await runCall('x1', async () => stream.write('plain\n'));
    await runCall(undefined, async () => stream.write('none\n'));
    assert.deepEqual(written, ['plain\n', 'none\n']);
  });
});

describe('the listening socket gustd hands over', () => {
  // gustd binds an instance's socket and passes it as GUST_LISTEN_FD, so that the instance needs
  // no write access to its socket directory (a read-only /run/gust in the sandbox).
  test('a real runtime serves on the socket it was handed and binds nothing', async () => {
    const net = require('node:net');
    const { spawn } = require('node:child_process');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gust-node-'));
    const app = path.join(dir, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'index.js'), `
      const gust = require('gust');
      gust.op('environ', () => ({ listenFd: process.env.GUST_LISTEN_FD ?? null }));
    `);
    const socketPath = path.join(dir, 'instance.sock');
    const listener = net.createServer();
    await new Promise((resolve) => listener.listen(socketPath, resolve));
    // Closing the test's own server unlinks its path: the runtime is reached by a second name.
    const reached = path.join(dir, 'reached.sock');
    fs.linkSync(socketPath, reached);
    const child = spawn(process.execPath, [path.join(RUNTIME, 'gust', 'server.js')], {
      cwd: app,
      env: {
        PATH: process.env.PATH, NODE_PATH: RUNTIME, GUST_APP_ROOT: app, [INTERNAL_TOKEN_VARIABLE]: SECRET,
        // Where a runtime binding its own socket would fail: a directory that does not exist.
        GUST_SOCKET: path.join(dir, 'absent', 'instance.sock'), GUST_LISTEN_FD: '3',
      },
      stdio: ['ignore', 'inherit', 'inherit', listener._handle.fd],
    });
    await new Promise((resolve) => listener.close(resolve));
    try {
      const answer = await new Promise((resolve, reject) => {
        const req = http.request({ socketPath: reached, method: 'POST', path: '/_gust/ops/environ', headers: { 'X-Gust-Internal': SECRET } }, (res) => {
          const chunks = [];
          res.on('data', (chunk) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
        });
        req.on('error', reject);
        req.end('{}');
      });
      assert.deepEqual([answer.status, JSON.parse(answer.body)], [200, { listenFd: null }]);
      assert.equal(fs.existsSync(path.join(dir, 'absent')), false);
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
