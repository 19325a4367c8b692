/** Unit tests of the formatting helpers and the chart geometry. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { linePath, niceMax } from '../src/charts';
import {
  formatAgo,
  formatBytes,
  formatCost,
  formatPercent,
  formatRatio,
  formatSeconds,
  levelOf
} from '../src/format';

describe('format', () => {
  it('bytes', () => {
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(3 * 1024 ** 3), '3.0 GiB');
    assert.equal(formatBytes(200 * 1024 ** 2), '200 MiB');
    assert.equal(formatBytes(undefined), '–');
  });

  it('percent, ratio, cost, seconds', () => {
    assert.equal(formatPercent(12.6), '13%');
    assert.equal(formatPercent(2.34), '2.3%');
    assert.equal(formatPercent(null), '–');
    assert.equal(formatRatio(0.6), '60%');
    assert.equal(formatRatio(null), '–');
    assert.equal(formatCost(0.4213), '$0.42');
    assert.equal(formatCost(0.0012), '$0.0012');
    assert.equal(formatCost(0), '$0.00');
    assert.equal(formatSeconds(0.0123), '12 ms');
    assert.equal(formatSeconds(2.5), '2.50 s');
  });

  it('ago and levels', () => {
    assert.equal(formatAgo(100, 130), '30 s ago');
    assert.equal(formatAgo(0, 7200), '2 h ago');
    assert.equal(levelOf('ok'), 'ok');
    assert.equal(levelOf('open'), 'failing');
    assert.equal(levelOf('half-open'), 'degraded');
    assert.equal(levelOf('weird'), 'unknown');
  });
});

describe('charts', () => {
  it('linePath maps values into the box, breaks on null and clamps', () => {
    assert.equal(linePath([0, 50, 100], 100, 10, 0, 100), 'M0.0,10.0 L50.0,5.0 L100.0,0.0');
    assert.equal(linePath([0, null, 100], 100, 10, 0, 100), 'M0.0,10.0 M100.0,0.0');
    assert.equal(linePath([200], 100, 10, 0, 100), 'M100.0,0.0');
    assert.equal(linePath([], 100, 10, 0, 100), '');
    assert.equal(linePath([1], 100, 10, 5, 5), '');
  });

  it('niceMax rounds the top up to 1, 2 or 5 times a power of ten', () => {
    assert.equal(niceMax([0.3, 0.7]), 1);
    assert.equal(niceMax([13]), 20);
    assert.equal(niceMax([420, null]), 500);
    assert.equal(niceMax([]), niceMax([0]));
  });
});
