'use strict';
// gust.records against a real Unix-socket HTTP server standing in for gustd's records channel.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const gust = require('../gust/index.js');
const { dispatch, takeInternalToken, INTERNAL_TOKEN_VARIABLE } = require('../gust/server.js');

const seen = [];
let channel;
let directory;

before(async () => {
  directory = fs.mkdtempSync(path.join(os.tmpdir(), 'gust-records-'));
  const socketPath = path.join(directory, 'records.sock');
  channel = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length ? JSON.parse(Buffer.concat(chunks)) : null;
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, context: req.headers['x-gust-hook-context'], body });
      let status = 200;
      let answer = { ...(body || {}), _id: 'a' };
      if (req.url.endsWith('/missing')) [status, answer] = [404, { code: 404, error: 'No Review record' }];
      else if (body && !body.comment && req.method === 'POST') [status, answer] = [400, { code: 123, error: 'No comment provided!' }];
      else if (req.method === 'GET' && req.url.includes('?')) answer = { records: [{ _id: 'a', stars: 4 }] };
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise((resolve) => channel.listen(socketPath, resolve));
  process.env.GUST_RECORDS_SOCKET = socketPath;
  process.env.GUST_RECORDS_TOKEN = 'secret';
});

after(async () => {
  await new Promise((resolve) => channel.close(resolve));
  fs.rmSync(directory, { recursive: true, force: true });
  delete process.env.GUST_RECORDS_SOCKET;
  delete process.env.GUST_RECORDS_TOKEN;
});

// `/v1/records/Review` and `/v1/records/Review/` are the type's first page: a get with an id an op
// took from its arguments (`args.id`) handed every record to whoever called it.
test('getting no id or an empty one is null and asks the channel nothing', async () => {
  seen.length = 0;
  for (const missing of [undefined, null, '']) assert.equal(await gust.records.get('Review', missing), null, String(missing));
  assert.deepEqual(seen, []);
});

test('verbs map to the channel with the instance secret', async () => {
  seen.length = 0;
  assert.deepEqual(await gust.records.find('Review', { movie: 'x' }, { order: '-stars', limit: 5 }), [{ _id: 'a', stars: 4 }]);
  assert.equal((await gust.records.save('Review', { comment: 'ok' }))._id, 'a');
  await gust.records.save('Review', { _id: 'a', stars: 5 });
  assert.equal(await gust.records.get('Review', 'missing'), null);
  await gust.records.delete('Review', { _id: 'a' });
  assert.deepEqual(seen.map((s) => `${s.method} ${s.url.split('?')[0]}`), [
    'GET /v1/records/Review', 'POST /v1/records/Review', 'PUT /v1/records/Review/a',
    'GET /v1/records/Review/missing', 'DELETE /v1/records/Review/a',
  ]);
  const query = new URLSearchParams(seen[0].url.split('?')[1]);
  assert.deepEqual(JSON.parse(query.get('where')), { movie: 'x' });
  assert.equal(query.get('order'), '-stars');
  assert.ok(seen.every((s) => s.auth === 'Bearer secret'));
});

test('a rejected write rejects with gust.Error and its code', async () => {
  await assert.rejects(gust.records.save('Review', { stars: 1 }), (e) => e instanceof gust.Error && e.code === 123 && e.message === 'No comment provided!');
});

test('writes inside a hook carry its context', async () => {
  seen.length = 0;
  gust.afterSave('Touch', async (record) => { await gust.records.save('Touch', { _id: record._id, comment: 'seen' }); });
  takeInternalToken({ [INTERNAL_TOKEN_VARIABLE]: 'internal' });
  const headers = { 'x-gust-hook-context': 'ctx-1', 'x-gust-internal': 'internal' };
  const answer = await dispatch('POST', '/_gust/hooks/after_save/Touch', headers, Buffer.from(JSON.stringify({ record: { _id: 'a' } })));
  takeInternalToken({});
  assert.equal(answer.status, 200);
  assert.equal(seen.at(-1).context, 'ctx-1');
  await gust.records.get('Touch', 'a');
  assert.equal(seen.at(-1).context, undefined, 'outside the hook, no context');
  gust.registry.hooks.delete('after_save Touch');
});
