'use strict';
// gust/testing: an app's functions called in-process as gustd calls them, with an in-memory record store.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const gust = require('../gust/index.js');
const { Client } = require('../gust/testing.js');

const APP = `
const gust = require('gust');
const fed = [];
module.exports = { fed };

gust.op('food:buy', ({ food, quantity = 1 }) => {
  if (food === 'mud') throw new gust.Error('Not food', { code: 123 });
  return { food, quantity };
});
gust.op('cat:adopt', ({ name }) => gust.records.save('cat', { name }));
gust.op('cat:count', async () => (await gust.records.find('cat')).length);
gust.handler('/hello', { methods: ['GET', 'POST'] }, (request) => {
  if (request.method === 'POST') return new gust.Response({ got: request.json() }, { status: 201, headers: { 'X-Seen': request.headers['x-name'] || '' } });
  return 'Hello, ' + (request.query.name || 'world');
});
gust.every('1h', function feed({ food }) { fed.push(food); }, { food: 'tuna' });
gust.beforeSave('cat', (record) => {
  if (!record.name) throw new gust.Error('Missing cat name', { code: 422 });
  return { ...record, name: record.name[0].toUpperCase() + record.name.slice(1) };
});
gust.afterSave('cat', async (record, original) => {
  await gust.records.save('event', { cat: record._id, new: original === null });
  await gust.records.save('cat', { _id: record._id, seen: true }); // does not call this hook again
});
gust.beforeDelete('cat', (record) => {
  if (record.name === 'Tom') throw new gust.Error('Tom stays', { code: 403 });
});
`;

let client;
let root;
let realWrite;
before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'gust-testing-app-'));
  fs.writeFileSync(path.join(root, 'index.js'), APP);
  realWrite = process.stderr.write;
  process.stderr.write = () => true;
  client = await Client.start({ root });
});
after(async () => {
  process.stderr.write = realWrite;
  await client.close();
  fs.rmSync(root, { recursive: true, force: true });
});

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected a rejection');
}

test('an op takes JSON arguments and returns its result', async () => {
  assert.deepEqual(await client.op('food:buy', { food: 'tuna', quantity: 2 }), { food: 'tuna', quantity: 2 });
});

test("an op's errors are what a caller gets", async () => {
  const e = await rejection(client.op('food:buy', { food: 'mud' }));
  assert.ok(e instanceof gust.Error);
  assert.deepEqual([e.code, e.message], [123, 'Not food']);
  assert.equal((await rejection(client.op('nope'))).code, 404);
});

test('a handler gets a request', async () => {
  let answer = await client.get('/hello', { query: { name: 'Tom' } });
  assert.deepEqual([answer.status, answer.text, answer.headers['content-type']], [200, 'Hello, Tom', 'text/plain; charset=utf-8']);
  answer = await client.post('/hello/', { json: { a: 1 }, headers: { 'X-Name': 'me' } });
  assert.deepEqual([answer.status, answer.json(), answer.headers['x-seen']], [201, { got: { a: 1 } }, 'me']);
  answer = await client.delete('/hello');
  assert.deepEqual([answer.status, answer.headers.allow], [405, 'GET, POST']);
});

test('a schedule runs with its params or others', async () => {
  const app = require(path.join(root, 'index.js'));
  await client.schedule('feed');
  await client.schedule('feed', { food: 'salmon' });
  assert.deepEqual(app.fed, ['tuna', 'salmon']);
});

test('a hook takes a record', async () => {
  assert.deepEqual(await client.hook('before_save', 'cat', { name: 'tom' }), { name: 'Tom' });
  assert.equal((await rejection(client.hook('before_save', 'cat', {}))).code, 422);
});

test('records work in memory with the hooks firing', async () => {
  const cat = await client.op('cat:adopt', { name: 'tom' });
  assert.equal(cat.name, 'Tom'); // before_save ran
  assert.equal((await client.records.get('cat', cat._id)).seen, true); // after_save ran, once
  const events = await client.records.find('event', { cat: cat._id });
  assert.deepEqual(events.map((e) => e.new), [true]);
  assert.equal(await client.op('cat:count'), 1);
  const missing = await rejection(client.op('cat:adopt', { name: '' }));
  assert.deepEqual([missing.code, missing.message], [422, 'Missing cat name']);
  assert.equal((await rejection(client.records.delete('cat', cat))).code, 403);
  assert.equal(await client.op('cat:count'), 1);
});
