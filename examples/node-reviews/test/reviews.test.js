'use strict';
// The reviews example's own tests, with Gust's test client (gust/testing).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Client } = require('gust/testing');

let client;
before(async () => { client = await Client.start({ root: path.join(__dirname, '..') }); });
after(() => client.close());

test('hello', async () => {
  assert.deepEqual(await client.op('hello', { name: 'Tom' }), { greeting: 'Hello, Tom!' });
});

test('reviews are saved through their hook and averaged', async () => {
  const long = 'x'.repeat(200);
  const saved = await client.op('addReview', { movie: 'Jaws', stars: 4, comment: long });
  assert.equal(saved.comment.length, 140); // beforeSave truncated it
  await client.records.save('Review', { movie: 'Jaws', stars: 2, comment: 'meh' });
  assert.deepEqual(await client.op('averageStars', { movie: 'Jaws' }), { movie: 'Jaws', reviews: 2, average: 3 });
});

test('a review needs a comment', async () => {
  await assert.rejects(client.op('addReview', { movie: 'Jaws', stars: 5 }), { code: 123, message: 'No comment provided!' });
});

test('the about page', async () => {
  assert.equal((await client.get('/reviews/about')).text, 'Reviews, served by Gust.\n');
});
