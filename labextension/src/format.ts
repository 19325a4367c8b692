/**
 * Small formatting helpers (pure functions, unit-tested in Node).
 */

/** `1536` → `"1.5 KiB"`; null/undefined → `"–"`. */
export function formatBytes(bytes: number | null | undefined): string {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes)) {
    return '–';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Math.abs(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const sign = bytes < 0 ? '-' : '';
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${sign}${value.toFixed(digits)} ${units[unit]}`;
}

/** `12.345` → `"12%"` (a 0..100 value); null → `"–"`. */
export function formatPercent(value: number | null | undefined): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return '–';
  }
  return `${value < 10 && value > 0 ? value.toFixed(1) : Math.round(value)}%`;
}

/** A 0..1 ratio as a percent; null (no requests yet) → `"–"`. */
export function formatRatio(ratio: number | null | undefined): string {
  return typeof ratio === 'number' ? formatPercent(ratio * 100) : '–';
}

/** US dollars: `0.4213` → `"$0.42"`, small amounts keep 4 digits; null → `"–"`. */
export function formatCost(usd: number | null | undefined): string {
  if (typeof usd !== 'number' || !Number.isFinite(usd)) {
    return '–';
  }
  return usd !== 0 && Math.abs(usd) < 0.01 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

/** Seconds: `0.0123` → `"12 ms"`, `2.5` → `"2.50 s"`; null → `"–"`. */
export function formatSeconds(seconds: number | null | undefined): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) {
    return '–';
  }
  return seconds < 1 ? `${Math.round(seconds * 1000)} ms` : `${seconds.toFixed(2)} s`;
}

/** How long ago a unix time (seconds) was, relative to `now` (seconds). */
export function formatAgo(time: number | null | undefined, now: number = Date.now() / 1000): string {
  if (typeof time !== 'number' || !Number.isFinite(time)) {
    return '–';
  }
  const delta = Math.max(0, now - time);
  if (delta < 60) {
    return `${Math.round(delta)} s ago`;
  }
  if (delta < 3600) {
    return `${Math.round(delta / 60)} min ago`;
  }
  if (delta < 86400) {
    return `${Math.round(delta / 3600)} h ago`;
  }
  return `${Math.round(delta / 86400)} d ago`;
}

/** The CSS level of a health string: ok, degraded, failing, or unknown. */
export function levelOf(status: string | null | undefined): 'ok' | 'degraded' | 'failing' | 'unknown' {
  switch (status) {
    case 'ok':
    case 'closed':
      return 'ok';
    case 'degraded':
    case 'half-open':
    case 'half_open':
    case 'warning':
      return 'degraded';
    case 'failing':
    case 'open':
    case 'critical':
      return 'failing';
    default:
      return 'unknown';
  }
}
