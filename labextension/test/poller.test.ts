/**
 * Unit tests of the polling logic (node:test on the compiled JS, a real
 * `@lumino/polling` Poll, short intervals; Math.random is pinned where the
 * backoff's jitter would make a check flaky).
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';

import { intervalFromSetting, NotEnabledError, sampleOf, StatusPoller } from '../src/poller';
import { IStatus } from '../src/types';

function status(overrides: Partial<IStatus> = {}): IStatus {
  return {
    schema: 1,
    version: '0.1.0',
    time: 1764621000,
    status: 'ok',
    resources: { cpu_percent: 12.5, memory: { used_bytes: 100, total_bytes: 200, percent: 50 }, gpus: [] },
    cache: { hits: 3, misses: 1, hit_ratio: 0.75 },
    cells: { total: 2, errors: 0, p50_seconds: 0.01, p95_seconds: 0.2 },
    ...overrides
  };
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** Resolves when `predicate()` holds, polling every 2 ms, or fails after `timeoutMs`. */
async function until(predicate: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) {
      throw new Error('condition not reached in time');
    }
    await sleep(2);
  }
}

const pollers: StatusPoller[] = [];
function make(options: ConstructorParameters<typeof StatusPoller>[0]): StatusPoller {
  const poller = new StatusPoller(options);
  pollers.push(poller);
  return poller;
}

const realRandom = Math.random;
afterEach(() => {
  Math.random = realRandom;
  while (pollers.length) {
    pollers.pop()!.dispose();
  }
});

describe('StatusPoller', () => {
  it('fetches at once on start and keeps the status and a sample', async () => {
    const poller = make({ fetch: async () => status(), intervalMs: 1000, standby: 'never' });
    assert.equal(poller.state, 'loading');
    let changes = 0;
    poller.changed.connect(() => changes++);
    await poller.start();
    await until(() => poller.state === 'ok');
    assert.equal(poller.requests, 1);
    assert.equal(changes, 1);
    assert.equal(poller.status?.resources?.cpu_percent, 12.5);
    assert.deepEqual(
      poller.history.map(s => s.cpu),
      [12.5]
    );
  });

  it('backs off after failures up to the cap, then returns to the base interval', async () => {
    Math.random = () => 0.999999; // the largest jitter: growth is exactly x3 each time
    let failures = 4;
    const poller = make({
      fetch: async () => {
        if (failures-- > 0) {
          throw new Error('HTTP 503');
        }
        return status();
      },
      intervalMs: 10,
      maxIntervalMs: 200,
      standby: 'never'
    });
    const intervals: Array<[string, number]> = [];
    poller.ticked.connect((_, tick) => intervals.push([tick.phase, tick.interval]));
    await poller.start();
    await until(() => poller.state === 'ok', 5000);
    const rejected = intervals.filter(([phase]) => phase === 'rejected').map(([, i]) => i);
    assert.deepEqual(rejected, [10, 30, 90, 200]);
    const after = intervals[intervals.length - 1];
    assert.deepEqual(after, ['reconnected', 10]);
    assert.equal(poller.error, null);
  });

  it('never retries sooner than the base interval (lumino draws below it after a failed first tick)', async () => {
    Math.random = () => 0; // the smallest jitter
    const poller = make({
      fetch: async () => {
        throw new Error('HTTP 503');
      },
      intervalMs: 20,
      maxIntervalMs: 100,
      standby: 'never'
    });
    const rejected: number[] = [];
    poller.ticked.connect((_, tick) => {
      if (tick.phase === 'rejected') {
        rejected.push(tick.interval);
      }
    });
    await poller.start();
    await until(() => rejected.length >= 3);
    assert.ok(
      rejected.every(i => i >= 20),
      `intervals ${rejected}`
    );
  });

  it('a failure keeps the last good status and reports the error', async () => {
    let fail = false;
    const poller = make({
      fetch: async () => {
        if (fail) {
          throw new Error('network down');
        }
        return status();
      },
      intervalMs: 10,
      maxIntervalMs: 20,
      standby: 'never'
    });
    await poller.start();
    await until(() => poller.state === 'ok');
    fail = true;
    await until(() => poller.state === 'error');
    assert.equal(poller.error, 'network down');
    assert.equal(poller.status?.status, 'ok');
  });

  it('a 404 means the server extension is not enabled: state disabled, status cleared, backoff', async () => {
    Math.random = () => 0.999999;
    const poller = make({
      fetch: async () => {
        throw new NotEnabledError();
      },
      intervalMs: 10,
      maxIntervalMs: 1000,
      standby: 'never'
    });
    await poller.start();
    await until(() => poller.state === 'disabled');
    assert.equal(poller.status, null);
    assert.equal(poller.error, 'sci_ext server extension not enabled');
    await until(() => poller.requests >= 3);
    assert.ok(poller.currentInterval > 10, `interval grew: ${poller.currentInterval}`);
  });

  it('stands by (no requests) while the standby condition holds, resumes after it', async () => {
    let hidden = false;
    const poller = make({
      fetch: async () => status(),
      intervalMs: 10,
      standby: () => hidden
    });
    await poller.start();
    await until(() => poller.requests >= 2);
    hidden = true;
    await sleep(30); // let an in-flight tick finish
    const before = poller.requests;
    await sleep(150); // 15 intervals
    assert.equal(poller.requests, before, 'no request while hidden');
    hidden = false;
    await poller.refresh();
    await until(() => poller.requests > before);
  });

  it('setInterval changes the frequency; bad intervals are refused', async () => {
    const poller = make({ fetch: async () => status(), intervalMs: 5000, standby: 'never' });
    poller.setInterval(2000, 30000);
    assert.deepEqual(
      { interval: poller.frequency.interval, max: poller.frequency.max },
      { interval: 2000, max: 30000 }
    );
    poller.setInterval(8000, 1000); // the cap never goes below the interval
    assert.equal(poller.frequency.max, 8000);
    assert.throws(() => poller.setInterval(0), /refresh interval must be > 0 ms/);
  });

  it('keeps a bounded history', async () => {
    let n = 0;
    const poller = make({
      fetch: async () => status({ resources: { cpu_percent: n++ } }),
      intervalMs: 2,
      historySize: 5,
      standby: 'never'
    });
    await poller.start();
    await until(() => poller.requests >= 8);
    assert.equal(poller.history.length, 5);
    const cpus = poller.history.map(s => s.cpu as number);
    assert.deepEqual(
      cpus,
      [...cpus].sort((a, b) => a - b)
    );
    assert.ok(cpus[0] >= 3);
  });

  it('dispose stops polling', async () => {
    const poller = make({ fetch: async () => status(), intervalMs: 5, standby: 'never' });
    await poller.start();
    await until(() => poller.requests >= 1);
    poller.dispose();
    const count = poller.requests;
    await sleep(40);
    assert.equal(poller.requests, count);
    assert.ok(poller.isDisposed);
  });
});

describe('helpers', () => {
  it('sampleOf reads the charted values and nulls what is missing', () => {
    const s = sampleOf(
      status({ resources: { cpu_percent: 5, gpus: [{ index: 0, name: 'g', utilization_percent: 35 }] } })
    );
    assert.deepEqual(
      { cpu: s.cpu, memory: s.memory, hit: s.hitRatio, p95: s.p95, gpus: s.gpus },
      { cpu: 5, memory: null, hit: 0.75, p95: 0.2, gpus: [35] }
    );
    assert.equal(sampleOf(status({ cache: { hit_ratio: null } })).hitRatio, null);
  });

  it('intervalFromSetting clamps to 1..3600 s and falls back on junk', () => {
    assert.equal(intervalFromSetting(5), 5000);
    assert.equal(intervalFromSetting(0.2), 1000);
    assert.equal(intervalFromSetting(99999), 3600000);
    assert.equal(intervalFromSetting('7'), 5000);
    assert.equal(intervalFromSetting(undefined, 60), 60000);
  });
});
