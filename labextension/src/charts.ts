/**
 * Dependency-free SVG line charts for the panel.
 */

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * The `d` attribute of a polyline through `values` in a `width` x `height` box.
 * Nulls break the line (a new `M` segment); the y range is `[min, max]`
 * (values outside are clamped).  Returns `''` when there is nothing to draw.
 */
export function linePath(
  values: ReadonlyArray<number | null>,
  width: number,
  height: number,
  min: number,
  max: number
): string {
  const n = values.length;
  if (n === 0 || !(max > min)) {
    return '';
  }
  const step = n > 1 ? width / (n - 1) : 0;
  const parts: string[] = [];
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      pen = false;
      return;
    }
    const clamped = Math.min(max, Math.max(min, v));
    const x = n > 1 ? i * step : width;
    const y = height - ((clamped - min) / (max - min)) * height;
    parts.push(`${pen ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`);
    pen = true;
  });
  return parts.join(' ');
}

/** The upper bound of an auto-scaled axis: a "nice" number above the largest value. */
export function niceMax(values: ReadonlyArray<number | null>, floor = 1e-9): number {
  const top = Math.max(floor, ...values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const magnitude = Math.pow(10, Math.floor(Math.log10(top)));
  for (const m of [1, 2, 5, 10]) {
    if (top <= m * magnitude) {
      return m * magnitude;
    }
  }
  return 10 * magnitude;
}

export interface IChartOptions {
  title: string;
  values: ReadonlyArray<number | null>;
  /** Fixed range, or auto (0 .. niceMax) when max is omitted. */
  min?: number;
  max?: number;
  /** Text of the newest value. */
  label: string;
  /** The axis's top in the label's units (`formatSeconds`, `formatPercent`); default: the number. */
  formatAxis?: (max: number) => string;
  /** Auto range: the top when there are no values yet, or they are all below it. */
  floor?: number;
  /** data-chart attribute (for tests and styling). */
  key: string;
  width?: number;
  height?: number;
}

/** A titled line chart element: `<figure class="sci-ext-chart"><svg>…</svg></figure>`. */
export function lineChart(options: IChartOptions): HTMLElement {
  const width = options.width ?? 240;
  const height = options.height ?? 48;
  const min = options.min ?? 0;
  const max = options.max ?? niceMax(options.values, options.floor);
  const figure = document.createElement('figure');
  figure.className = 'sci-ext-chart';
  figure.dataset.chart = options.key;
  const caption = document.createElement('figcaption');
  const title = document.createElement('span');
  title.className = 'sci-ext-chart-title';
  title.textContent = options.title;
  const value = document.createElement('span');
  value.className = 'sci-ext-chart-value';
  value.textContent = options.label;
  caption.append(title, value);

  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `${options.title}: ${options.label}`);
  const grid = document.createElementNS(SVG_NS, 'line');
  grid.setAttribute('class', 'sci-ext-chart-grid');
  grid.setAttribute('x1', '0');
  grid.setAttribute('x2', String(width));
  grid.setAttribute('y1', String(height / 2));
  grid.setAttribute('y2', String(height / 2));
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('class', 'sci-ext-chart-line');
  path.setAttribute('d', linePath(options.values, width, height, min, max));
  path.setAttribute('vector-effect', 'non-scaling-stroke');
  svg.append(grid, path);
  const scale = document.createElement('span');
  scale.className = 'sci-ext-chart-scale';
  // The axis is labelled in the same units as the value above it ("max 100 ms" under "88 ms").
  scale.textContent = `max ${options.formatAxis ? options.formatAxis(max) : Number(max.toPrecision(3))}`;
  figure.append(caption, svg, scale);
  return figure;
}
