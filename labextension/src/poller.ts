/**
 * Polling of the status endpoint: a `@lumino/polling` `Poll` with exponential
 * backoff on failure, standby while the page is hidden, and a bounded history
 * of samples for the charts.  No JupyterLab import here, so it runs (and is
 * unit-tested) in plain Node.
 */
import { IPoll, Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { IStatus } from './types';

/** Thrown by a fetcher when the endpoint does not exist (HTTP 404). */
export class NotEnabledError extends Error {
  constructor(message = 'sci_ext server extension not enabled') {
    super(message);
    this.name = 'NotEnabledError';
  }
}

/** What the poller knows: nothing yet, live data, no endpoint, or a failure. */
export type PollerState = 'loading' | 'ok' | 'disabled' | 'error';

/** One point of the charts, taken from one status response. */
export interface ISample {
  time: number;
  cpu: number | null;
  memory: number | null;
  hitRatio: number | null;
  p95: number | null;
  gpus: Array<number | null>;
}

export interface IPollerOptions {
  /** Fetch one status; throw `NotEnabledError` on 404, anything else on failure. */
  fetch: () => Promise<IStatus>;
  /** Base interval in milliseconds (the refresh interval setting). */
  intervalMs: number;
  /** Cap of the backoff in milliseconds (at least `intervalMs`). */
  maxIntervalMs?: number;
  /** Growth of the interval after each failure (`true`: lumino's default, 3). */
  backoff?: boolean | number;
  /** Samples kept for the charts. */
  historySize?: number;
  /** When to stand by; default `'when-hidden'` (no requests while the tab is hidden). */
  standby?: Poll.Standby | (() => boolean | Poll.Standby);
}

/** Turns a response into a chart sample (missing values become null). */
export function sampleOf(status: IStatus): ISample {
  const r = status.resources ?? {};
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  return {
    time: num(status.time) ?? Date.now() / 1000,
    cpu: num(r.cpu_percent),
    memory: num(r.memory?.percent),
    hitRatio: num(status.cache?.hit_ratio),
    p95: num(status.cells?.p95_seconds),
    gpus: (r.gpus ?? []).map(g => num(g.utilization_percent))
  };
}

/** Validates a refresh interval setting (seconds) and returns milliseconds. */
export function intervalFromSetting(seconds: unknown, fallbackSeconds = 5): number {
  const value = typeof seconds === 'number' && Number.isFinite(seconds) ? seconds : fallbackSeconds;
  return Math.round(Math.min(3600, Math.max(1, value)) * 1000);
}

/**
 * Polls the status endpoint and keeps the last answer, the state and a history.
 */
export class StatusPoller {
  constructor(options: IPollerOptions) {
    this._fetch = options.fetch;
    this._historySize = Math.max(2, options.historySize ?? 120);
    const frequency = this._frequency(options.intervalMs, options.maxIntervalMs, options.backoff ?? true);
    this._poll = new Poll<void, unknown, 'standby'>({
      auto: false,
      factory: () => this._tick(),
      frequency,
      name: 'sci-ext:status',
      standby: options.standby ?? 'when-hidden'
    });
    // The constructor raises `max` to at least lumino's default (30 s); the cap is ours.
    this._poll.frequency = frequency;
  }

  /** Emitted after every response, failure or state change. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Emitted after every poll tick (also standby ticks), with the tick state. */
  get ticked(): ISignal<this, IPoll.State<void, unknown, 'standby'>> {
    return this._ticked;
  }

  get state(): PollerState {
    return this._state;
  }

  /** The last good response (kept while later requests fail). */
  get status(): IStatus | null {
    return this._status;
  }

  /** Message of the last failure, null after a success. */
  get error(): string | null {
    return this._error;
  }

  get history(): readonly ISample[] {
    return this._history;
  }

  /** How many requests were started. */
  get requests(): number {
    return this._requests;
  }

  /** Milliseconds until the next tick as scheduled now (grows while failing). */
  get currentInterval(): number {
    return this._poll.state.interval;
  }

  get frequency(): IPoll.Frequency {
    return this._poll.frequency;
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /** Starts polling (the first request goes out at once). */
  async start(): Promise<void> {
    this._poll.ticked.connect(this._onTicked, this);
    await this._poll.start();
  }

  /** Requests now, out of schedule (e.g. when the page becomes visible again). */
  async refresh(): Promise<void> {
    await this._poll.refresh();
  }

  /** Changes the base interval and the backoff cap (milliseconds). */
  setInterval(intervalMs: number, maxIntervalMs?: number): void {
    const next = this._frequency(intervalMs, maxIntervalMs, this._poll.frequency.backoff);
    const now = this._poll.frequency;
    if (next.interval !== now.interval || next.max !== now.max) {
      this._poll.frequency = next;
    }
  }

  dispose(): void {
    if (this._poll.isDisposed) {
      return;
    }
    this._poll.dispose();
    Signal.clearData(this);
  }

  private _frequency(
    intervalMs: number,
    maxIntervalMs: number | undefined,
    backoff: boolean | number
  ): IPoll.Frequency {
    if (!(intervalMs > 0)) {
      throw new Error(`sci-ext: refresh interval must be > 0 ms, got ${intervalMs}`);
    }
    const max = Math.max(intervalMs, maxIntervalMs ?? intervalMs * 12);
    return { interval: intervalMs, max, backoff };
  }

  private async _tick(): Promise<void> {
    this._requests++;
    let status: IStatus;
    try {
      status = await this._fetch();
    } catch (reason) {
      if (reason instanceof NotEnabledError) {
        this._state = 'disabled';
        this._status = null;
      } else {
        this._state = 'error';
      }
      this._error = reason instanceof Error ? reason.message : String(reason);
      this._changed.emit();
      throw reason; // the Poll backs off
    }
    this._status = status;
    this._state = 'ok';
    this._error = null;
    this._history.push(sampleOf(status));
    if (this._history.length > this._historySize) {
      this._history.splice(0, this._history.length - this._historySize);
    }
    this._changed.emit();
  }

  private _onTicked(_: unknown, state: IPoll.State<void, unknown, 'standby'>): void {
    // Lumino's backoff draws the next interval between the base interval and
    // 3x the previous one; after a tick scheduled IMMEDIATE (start, refresh)
    // that range is below the base, so a failing first request was retried
    // within milliseconds.  A failure never retries sooner than the base interval.
    const base = this._poll.frequency.interval;
    if (state.phase === 'rejected' && state.interval < base) {
      void this._poll.schedule({
        cancel: current => current !== state,
        interval: base,
        payload: state.payload,
        phase: 'rejected'
      });
      return; // that tick is emitted in its turn
    }
    this._ticked.emit(state);
  }

  private _fetch: () => Promise<IStatus>;
  private _historySize: number;
  private _poll: Poll<void, unknown, 'standby'>;
  private _state: PollerState = 'loading';
  private _status: IStatus | null = null;
  private _error: string | null = null;
  private _history: ISample[] = [];
  private _requests = 0;
  private _changed = new Signal<this, void>(this);
  private _ticked = new Signal<this, IPoll.State<void, unknown, 'standby'>>(this);
}
