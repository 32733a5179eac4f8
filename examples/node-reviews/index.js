'use strict';
const gust = require('gust');

// Comments are kept to 140 characters; a review needs one.
gust.beforeSave('Review', function truncateComment(review) {
  if (!review.comment) throw new gust.Error('No comment provided!', { code: 123 });
  if (review.comment.length > 140) review.comment = review.comment.slice(0, 137) + '...';
  return review;
});

// The average of a movie's stars, over the Review records (LeanCloud's classic example).
gust.op('averageStars', async ({ movie }) => {
  const reviews = await gust.records.find('Review', { movie });
  const stars = reviews.map((review) => Number(review.stars) || 0);
  const average = stars.length ? stars.reduce((sum, n) => sum + n, 0) / stars.length : null;
  return { movie, reviews: stars.length, average };
});

// Saves a review from inside a function: its beforeSave hook runs in this same instance.
gust.op('addReview', (review) => gust.records.save('Review', review));

gust.op('hello', ({ name = 'world' } = {}) => ({ greeting: `Hello, ${name}!` }));

gust.handler('reviews/about', { methods: ['GET'] }, () => 'Reviews, served by Gust.\n');

let served = 0;
gust.op('counter', async () => ({ served: ++served }));
