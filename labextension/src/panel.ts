/**
 * The "Sci Health" left-sidebar panel: live charts and the sections of the
 * dashboard (health checks, resources incl. GPUs, kernels, cells and cache,
 * breakers, recent errors with correlation ids, active alerts, LLM usage).
 * Built with plain DOM (textContent only: server strings are never parsed as HTML).
 */
import { Widget } from '@lumino/widgets';

import { lineChart } from './charts';
import {
  formatAgo,
  formatBytes,
  formatCost,
  formatPercent,
  formatRatio,
  formatSeconds,
  levelOf
} from './format';
import { sciHealthIcon } from './icon';
import { StatusPoller } from './poller';
import { IStatus } from './types';

export const PANEL_ID = 'sci-ext-panel';

type Child = Node | string | null | undefined | false;

/** Creates an element with a class and children (strings become text nodes). */
function el(tag: string, className: string | null, ...children: Child[]): HTMLElement {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

function badge(status: string | null | undefined): HTMLElement {
  const node = el('span', 'sci-ext-badge', status ?? 'unknown');
  node.dataset.level = levelOf(status);
  return node;
}

function section(key: string, title: string, ...children: Child[]): HTMLElement {
  const node = el('section', 'sci-ext-section', el('h3', null, title), ...children);
  node.dataset.section = key;
  return node;
}

function table(head: string[], rows: Child[][], rowClass = 'sci-ext-row'): HTMLElement {
  const thead = el('thead', null, el('tr', null, ...head.map(h => el('th', null, h))));
  const tbody = el(
    'tbody',
    null,
    ...rows.map(cells => el('tr', rowClass, ...cells.map(c => el('td', null, c))))
  );
  return el('table', 'sci-ext-table', thead, tbody);
}

function empty(text: string): HTMLElement {
  return el('p', 'sci-ext-empty', text);
}

export class SciHealthPanel extends Widget {
  constructor(poller: StatusPoller) {
    super();
    this.id = PANEL_ID;
    this.addClass('sci-ext-panel');
    this.title.icon = sciHealthIcon;
    this.title.caption = 'Sci Health';
    this.node.tabIndex = 0;
    this._poller = poller;
    poller.changed.connect(this._onChanged, this);
    this.render();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poller.changed.disconnect(this._onChanged, this);
    super.dispose();
  }

  /** Redraws the whole panel from the poller (cheap: a few dozen nodes). */
  render(): void {
    const poller = this._poller;
    const status = poller.status;
    const parts: HTMLElement[] = [this._header(status)];
    if (poller.state === 'disabled') {
      parts.push(
        el(
          'div',
          'sci-ext-disabled',
          el('strong', null, 'sci_ext server extension not enabled'),
          el(
            'p',
            null,
            'GET /sci/api/status answered 404. Install sci_ext in the environment that runs ' +
              'the Jupyter server, or run "jupyter server extension enable sci_ext", then restart the server.'
          )
        )
      );
    } else if (poller.state === 'error') {
      parts.push(el('div', 'sci-ext-stale', `Cannot reach /sci/api/status: ${poller.error ?? ''}`));
    }
    if (status) {
      // What needs attention first (alerts, errors), then the state of everything.
      parts.push(this._charts(status), this._alerts(status), this._errors(status));
      parts.push(this._checks(status), this._resources(status), this._kernels(status));
      parts.push(this._cellsCache(status), this._breakers(status));
      if (status.llm) {
        parts.push(this._llm(status));
      }
    } else if (poller.state === 'loading') {
      parts.push(empty('Waiting for the first status…'));
    }
    this.node.replaceChildren(...parts);
    this.node.dataset.state = poller.state;
  }

  protected onAfterShow(): void {
    this.render();
  }

  private _onChanged(): void {
    if (this.isVisible) {
      this.render();
    }
  }

  private _header(status: IStatus | null): HTMLElement {
    const title = el('h2', null, 'Sci Health');
    const meta = status
      ? el(
          'span',
          'sci-ext-meta',
          `v${status.version ?? '?'} · updated ${new Date(status.time * 1000).toLocaleTimeString()}`
        )
      : null;
    const head = el('header', 'sci-ext-header', title, status ? badge(status.status) : null, meta);
    return head;
  }

  private _charts(status: IStatus): HTMLElement {
    const h = this._poller.history;
    const last = status.resources ?? {};
    const charts: HTMLElement[] = [
      lineChart({
        key: 'cpu',
        title: 'CPU',
        values: h.map(s => s.cpu),
        min: 0,
        max: 100,
        label: formatPercent(last.cpu_percent),
        formatAxis: formatPercent
      }),
      lineChart({
        key: 'memory',
        title: 'Memory',
        values: h.map(s => s.memory),
        min: 0,
        max: 100,
        label: formatPercent(last.memory?.percent),
        formatAxis: formatPercent
      }),
      lineChart({
        key: 'cache',
        title: 'Cache hit ratio',
        values: h.map(s => (s.hitRatio === null ? null : s.hitRatio * 100)),
        min: 0,
        max: 100,
        label: formatRatio(status.cache?.hit_ratio),
        formatAxis: formatPercent
      }),
      lineChart({
        key: 'p95',
        title: 'Cell p95',
        values: h.map(s => s.p95),
        label: formatSeconds(status.cells?.p95_seconds),
        // Seconds on the axis too; with no cells yet a 1 s axis, not a meaningless 0..1e-9.
        formatAxis: formatSeconds,
        floor: 1
      })
    ];
    (last.gpus ?? []).forEach((gpu, i) => {
      charts.push(
        lineChart({
          key: `gpu${gpu.index}`,
          title: `GPU ${gpu.index}`,
          values: h.map(s => s.gpus[i] ?? null),
          min: 0,
          max: 100,
          label: formatPercent(gpu.utilization_percent),
          formatAxis: formatPercent
        })
      );
    });
    return section('charts', 'Live', el('div', 'sci-ext-charts', ...charts));
  }

  private _checks(status: IStatus): HTMLElement {
    const checks = status.checks ?? [];
    return section(
      'checks',
      'Health checks',
      checks.length
        ? table(
            ['check', 'status', 'detail'],
            checks.map(c => [c.name, badge(c.status), c.detail ?? ''])
          )
        : empty('No checks reported.')
    );
  }

  private _resources(status: IStatus): HTMLElement {
    const r = status.resources ?? {};
    const rows: Child[][] = [
      ['CPU', `${formatPercent(r.cpu_percent)} of ${r.cpu_count ?? '?'} cores`],
      [
        'Memory',
        `${formatBytes(r.memory?.used_bytes)} / ${formatBytes(r.memory?.total_bytes)}` +
          (r.memory?.limit_source ? ` (${r.memory.limit_source})` : '')
      ],
      ['Disk free', `${formatBytes(r.disk?.free_bytes)} / ${formatBytes(r.disk?.total_bytes)}`]
    ];
    for (const gpu of r.gpus ?? []) {
      rows.push([
        `GPU ${gpu.index}`,
        `${gpu.name}: ${formatPercent(gpu.utilization_percent)}, ` +
          `${formatBytes(gpu.memory_used_bytes)} / ${formatBytes(gpu.memory_total_bytes)}` +
          (typeof gpu.temperature_c === 'number' ? `, ${gpu.temperature_c} °C` : '')
      ]);
    }
    return section('resources', 'Resources', table(['', ''], rows));
  }

  private _kernels(status: IStatus): HTMLElement {
    const kernels = status.kernels ?? [];
    return section(
      'kernels',
      `Kernels (${kernels.length})`,
      kernels.length
        ? table(
            ['kernel', 'state', 'last activity'],
            kernels.map(k => [
              `${k.name ?? '?'} ${k.id.slice(0, 8)}`,
              k.execution_state ?? '?',
              k.last_activity ? formatAgo(Date.parse(k.last_activity) / 1000, status.time) : '–'
            ])
          )
        : empty('No running kernels.')
    );
  }

  private _cellsCache(status: IStatus): HTMLElement {
    const c = status.cells ?? {};
    const k = status.cache ?? {};
    return section(
      'cells',
      'Cells and cache',
      table(
        ['', ''],
        [
          ['Cells run', `${c.total ?? 0} (${c.errors ?? 0} errors)`],
          ['Duration p50 / p95', `${formatSeconds(c.p50_seconds)} / ${formatSeconds(c.p95_seconds)}`],
          ['Cache hits / misses', `${k.hits ?? 0} / ${k.misses ?? 0} (${formatRatio(k.hit_ratio)})`],
          ['Cache size', `${formatBytes(k.bytes)} in ${k.entries ?? 0} entries`],
          ['Retries', String(status.retries?.total ?? 0)]
        ]
      )
    );
  }

  private _breakers(status: IStatus): HTMLElement {
    const breakers = status.breakers ?? [];
    return section(
      'breakers',
      'Circuit breakers',
      breakers.length
        ? table(
            ['name', 'state', 'failures', 'retry'],
            breakers.map(b => [
              b.name,
              badge(b.state),
              String(b.failures ?? 0),
              b.state === 'open' && typeof b.next_attempt_at === 'number'
                ? `in ${Math.max(0, Math.round(b.next_attempt_at - status.time))} s`
                : ''
            ])
          )
        : empty('No breakers used yet.')
    );
  }

  private _errors(status: IStatus): HTMLElement {
    const errors = status.errors ?? [];
    const items = errors.map(e => {
      const corr = el('code', 'sci-ext-corr', e.correlation_id ?? 'no correlation id');
      corr.title = 'correlation id: search the logs (core.state_dir/logs/sci_ext.jsonl) for it';
      const item = el(
        'li',
        'sci-ext-error',
        el('div', 'sci-ext-error-head', el('strong', null, e.error_type ?? 'Error'), ` ${e.category ?? ''}`),
        el('div', 'sci-ext-error-msg', e.message ?? ''),
        el('div', 'sci-ext-error-meta', `${formatAgo(e.time, status.time)}${e.where ? ` · ${e.where}` : ''}`),
        el('div', 'sci-ext-error-meta', 'id ', corr)
      );
      item.dataset.correlationId = e.correlation_id ?? '';
      return item;
    });
    return section(
      'errors',
      `Recent errors (${errors.length})`,
      items.length ? el('ul', 'sci-ext-errors', ...items) : empty('No errors.')
    );
  }

  private _alerts(status: IStatus): HTMLElement {
    // A list, not a table: at the sidebar's default width (~250 px) a fourth column (the
    // summary, the part that says what is wrong) had no room left and vanished.
    const alerts = status.alerts ?? [];
    const items = alerts.map(a => {
      const item = el(
        'li',
        'sci-ext-alert',
        el(
          'div',
          'sci-ext-alert-head',
          el('strong', null, a.name),
          ' ',
          badge(a.severity),
          el('span', 'sci-ext-alert-since', ` since ${formatAgo(a.since, status.time)}`)
        ),
        el('div', 'sci-ext-alert-summary', a.summary ?? '')
      );
      item.dataset.alert = a.name;
      return item;
    });
    return section(
      'alerts',
      `Active alerts (${alerts.length})`,
      items.length ? el('ul', 'sci-ext-alerts', ...items) : empty('No active alerts.')
    );
  }

  private _llm(status: IStatus): HTMLElement {
    const llm = status.llm ?? {};
    const rows: Child[][] = (llm.by_model ?? []).map(m => [
      `${m.provider ?? ''}/${m.model ?? ''}`,
      String(m.calls ?? 0),
      formatCost(m.cost_usd)
    ]);
    return section(
      'llm',
      'LLM usage',
      el(
        'p',
        null,
        `${llm.calls ?? 0} calls, ${formatCost(llm.cost_usd)} spent, ${formatCost(llm.cost_saved_usd)} saved by the cache`
      ),
      rows.length ? table(['model', 'calls', 'cost'], rows) : null
    );
  }

  private _poller: StatusPoller;
}
