'use strict';
const gust = require('gust');

// Comments are kept to 140 characters; a review needs one.
gust.beforeSave('Review', function truncateComment(review) {
  if (!review.comment) throw new gust.Error('No comment provided!', { code: 123 });
  if (review.comment.length > 140) review.comment = review.comment.slice(0, 137) + '...';
  return review;
});

gust.op('hello', ({ name = 'world' } = {}) => ({ greeting: `Hello, ${name}!` }));

gust.handler('reviews/about', { methods: ['GET'] }, () => 'Reviews, served by Gust.\n');

let served = 0;
gust.op('counter', async () => ({ served: ++served }));
