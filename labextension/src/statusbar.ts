/**
 * The status-bar item: a health dot, CPU %, memory, cache hit ratio and the LLM
 * cost (when LLM accounting reports it).  A click opens the "Sci Health" panel.
 */
import { Widget } from '@lumino/widgets';

import { formatBytes, formatCost, formatPercent, formatRatio, levelOf } from './format';
import { StatusPoller } from './poller';

export const STATUS_ITEM_ID = 'sci-ext-status';

export class SciStatusItem extends Widget {
  constructor(poller: StatusPoller, onClick: () => void) {
    super();
    this.id = STATUS_ITEM_ID;
    this.addClass('sci-ext-status');
    this._poller = poller;
    this._onClickFn = onClick;
    this.node.setAttribute('role', 'button');
    this.node.tabIndex = 0;
    this._dot.className = 'sci-ext-dot';
    this._text.className = 'sci-ext-status-text';
    this.node.append(this._dot, this._text);
    this.node.addEventListener('click', this._onClickFn);
    this.node.addEventListener('keydown', this._onKey);
    poller.changed.connect(this.render, this);
    this.render();
  }

  /** Redraws from the poller's state. */
  render(): void {
    const poller = this._poller;
    const status = poller.status;
    this.node.dataset.state = poller.state;
    if (poller.state === 'disabled') {
      this._setLevel('unknown');
      this._text.textContent = 'sci: off';
      this.node.title = 'sci_ext server extension not enabled (GET /sci/api/status: 404)';
      return;
    }
    if (!status) {
      this._setLevel(poller.state === 'error' ? 'failing' : 'unknown');
      this._text.textContent = poller.state === 'error' ? 'sci: unreachable' : 'sci: …';
      this.node.title = poller.error ?? 'sci_ext: waiting for the first status';
      return;
    }
    const r = status.resources ?? {};
    const parts = [
      `CPU ${formatPercent(r.cpu_percent)}`,
      `Mem ${formatBytes(r.memory?.used_bytes)}`,
      `Cache ${formatRatio(status.cache?.hit_ratio)}`
    ];
    if (status.llm) {
      parts.push(`LLM ${formatCost(status.llm.cost_usd)}`);
    }
    this._setLevel(poller.state === 'error' ? 'degraded' : levelOf(status.status));
    this._text.textContent = parts.join(' · ');
    const stale = poller.state === 'error' ? ` (stale: ${poller.error})` : '';
    this.node.title = `sci_ext: ${status.status}${stale}. Click for the Sci Health panel.`;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.node.removeEventListener('click', this._onClickFn);
    this.node.removeEventListener('keydown', this._onKey);
    this._poller.changed.disconnect(this.render, this);
    super.dispose();
  }

  private _setLevel(level: string): void {
    this._dot.dataset.level = level;
    this.node.dataset.level = level;
  }

  private _onKey = (event: KeyboardEvent): void => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      this._onClickFn();
    }
  };

  private _poller: StatusPoller;
  private _onClickFn: () => void;
  private _dot = document.createElement('span');
  private _text = document.createElement('span');
}
