// Number and time formatting for display.

const intFmt = new Intl.NumberFormat('en-US');
const rateFmt = new Intl.NumberFormat('en-US', {maximumFractionDigits: 1, minimumFractionDigits: 1});

// int formats an integer with thousands separators; missing values show as "–".
export function int(n) {
  return Number.isFinite(n) ? intFmt.format(n) : '–';
}

const numFmt = new Intl.NumberFormat('en-US', {maximumFractionDigits: 6});

// number formats any finite number with thousands separators and up to six
// decimals; missing values (null, a register never set) show as "–".
export function number(n) {
  return Number.isFinite(n) ? numFmt.format(n) : '–';
}

// rate formats events per second with one decimal; null shows as "–".
export function rate(r) {
  return r === null || r === undefined || !Number.isFinite(r) ? '–' : rateFmt.format(r);
}

// ago says how long before now the RFC 3339 time t was ("4 s ago").
export function ago(t, now = Date.now()) {
  const ms = Date.parse(t);
  if (!Number.isFinite(ms) || ms <= 0) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// time shows an RFC 3339 time as local date and time with milliseconds.
export function time(t) {
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t ?? '');
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

// json shows an event's data compactly on one line.
export function json(v) {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

const units = {s: 1e3, m: 60e3, h: 3600e3, d: 86400e3};

// parseTime turns a time field into RFC 3339: empty stays empty, "now" and
// relative offsets ("-15m", "-2h", "-30s", "-1d") count back from now, anything
// else must parse as a date. It returns {value} or {error}.
export function parseTime(s, now = Date.now()) {
  const v = (s || '').trim();
  if (v === '') return {value: ''};
  if (v === 'now') return {value: new Date(now).toISOString()};
  const rel = /^-(\d+(?:\.\d+)?)([smhd])$/.exec(v);
  if (rel) return {value: new Date(now - Number(rel[1]) * units[rel[2]]).toISOString()};
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) return {error: `"${v}" is not a time: use RFC 3339 (2024-05-01T12:00:00Z) or an offset like -15m`};
  return {value: new Date(ms).toISOString()};
}
