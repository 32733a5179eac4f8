'use strict';
// The Express example's own tests: its routes, op, handler and schedule, called as gustd calls them.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Client } = require('gust/testing');

let client;
before(async () => { client = await Client.start({ root: path.join(__dirname, '..') }); });
after(() => client.close());

test('Express answers its routes', async () => {
  const answer = await client.get('/todos/1');
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.json(), { id: 1, title: 'Feed the cat', baseUrl: '', path: '/todos/1' });
  assert.equal((await client.get('/todos/99')).status, 404);
});

test('a posted todo is counted by the op', async () => {
  const before = (await client.op('todos:count')).count;
  assert.equal((await client.post('/todos', { json: { title: 'Buy tuna' } })).status, 201);
  assert.deepEqual(await client.op('todos:count'), { count: before + 1 });
});

test("Gust's handler wins for its path", async () => {
  assert.deepEqual(Object.keys((await client.get('/status')).json()), ['todos']);
});

test('the countdown streams every line', async () => {
  assert.equal((await client.get('/countdown')).text, 'three\ntwo\none\n');
});

test('the schedule runs', async () => {
  await client.schedule('tidy');
});
