'use strict';
// JSON as gustd and the Python runtime read it: integers stay exact (a BigInt
// beyond Number.MAX_SAFE_INTEGER, where JSON.parse would round), and NaN or an
// infinity is never read or written (JSON has no such numbers).

const crypto = require('node:crypto');

// A string no JSON text sends: it stands in for a big integer while JSON.parse
// or JSON.stringify handles the rest.
const MARK = `\u0000gust-bigint-${crypto.randomBytes(8).toString('hex')}:`;
const MAYBE_LARGE = /\d{16}|[eE][+-]?\d{3}/;
const TOKENS = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
const MARKED = new RegExp(`"${JSON.stringify(MARK).slice(1, -1).replace(/\\/g, '\\\\')}(-?\\d+)"`, 'g');

// JSON.parse, but an integer JSON.parse would round is a BigInt, and a number
// too large for a double is a SyntaxError.
function parse(text) {
  // Fewer than 16 digits in a row and no 3-digit exponent: nothing to round or overflow.
  if (!MAYBE_LARGE.test(text)) return JSON.parse(text);
  // JSON.parse checks the text first: what follows scans strings with a regular expression that
  // an unterminated one (`"` then `\"` after `\"`) makes quadratic, and reads numbers JSON has
  // not (`0123`). Only a text JSON.parse takes is scanned again.
  const plain = JSON.parse(text);
  if (!MAYBE_LARGE.test(text.replace(/"(?:[^"\\]|\\.)*"/g, '""'))) return plain;
  let marked = false;
  const source = text.replace(TOKENS, (token) => {
    if (token.startsWith('"')) return token;
    const value = Number(token);
    if (!Number.isFinite(value)) throw new SyntaxError(`${token} is too large for a JSON number`);
    if (/^-?\d+$/.test(token) && !Number.isSafeInteger(value)) {
      marked = true;
      return JSON.stringify(MARK + token);
    }
    return token;
  });
  if (!marked) return JSON.parse(source);
  return JSON.parse(source, (key, value) => (typeof value === 'string' && value.startsWith(MARK) ? BigInt(value.slice(MARK.length)) : value));
}

class NonFiniteNumberError extends TypeError {}

// JSON.stringify, but a BigInt is written as its digits, and NaN or an
// infinity throws NonFiniteNumberError (JSON.stringify would write null).
function stringify(value) {
  let marked = false;
  const text = JSON.stringify(value, (key, item) => {
    if (typeof item === 'bigint') {
      marked = true;
      return MARK + item.toString();
    }
    if (typeof item === 'number' && !Number.isFinite(item)) throw new NonFiniteNumberError(`${item} is not a JSON number`);
    return item;
  });
  return marked ? text.replace(MARKED, '$1') : text;
}

module.exports = { parse, stringify, NonFiniteNumberError };
