// A small wrapper around uPlot (vendor/uPlot.iife.min.js, loaded as a classic
// script that defines window.uPlot) for events-per-second charts that follow
// their container's width.
import {h} from './dom.js';

// Colours chosen to be told apart and to stand out on white (all ≥ 3:1).
const PALETTE = ['#0b5c8a', '#c2410c', '#15803d', '#7e22ce', '#b91c1c', '#0e7490', '#a16207', '#be185d', '#4d7c0f', '#475569'];

// color returns the line colour of the i-th series.
export function color(i) {
  return PALETTE[i % PALETTE.length];
}

// The colour of a fleet-total line, darker than every node's.
const TOTAL = '#12324a';

// rateChart makes a figure with a caption and a uPlot chart of one line per label.
// It returns {el, update(data, labels, {ownScale}), destroy()}: update redraws with
// uPlot data ([xs, ys…]) and rebuilds the chart when the labels or ownScale
// change; destroy frees it.
// With total set, the first line is a total: drawn thicker, in its own colour.
// update's ownScale puts it on a scale of its own, on the right: a fleet's total
// can be thousands of times a node's rate, and on one scale every node's line
// would lie flat on zero.
export function rateChart(caption, summary, {total = false} = {}) {
  const frame = chartFrame(caption, summary, () => plot);
  const {el, holder} = frame;
  let plot = null;
  let key = '';

  function fromZero(u, min, max) {
    return [0, Math.max(1, (max || 0) * 1.1)];
  }

  function build(labels, ownScale) {
    const apart = total && ownScale;
    if (plot) plot.destroy();
    const opts = {
      ...frame.size(),
      // At least a minute wide, so that the first polls do not get sub-second ticks.
      scales: {
        x: {time: true, range: (u, min, max) => (max == null ? [min, max] : [Math.min(min, max - 60), max])},
        y: {range: fromZero},
        total: {range: fromZero},
      },
      axes: [
        {stroke: '#4b5563', grid: {stroke: '#e5e7eb'}},
        {stroke: '#4b5563', grid: {stroke: '#e5e7eb'}, label: apart ? 'events/s per node' : 'events/s', size: 56},
        ...(apart ? [{scale: 'total', side: 1, stroke: TOTAL, grid: {show: false}, label: 'events/s, all nodes', size: 64}] : []),
      ],
      series: [
        {label: 'Time', value: (u, v) => (v == null ? '–' : new Date(v * 1000).toLocaleTimeString())},
        ...labels.map((l, i) => ({
          label: l,
          scale: apart && i === 0 ? 'total' : 'y',
          stroke: total && i === 0 ? TOTAL : color(i),
          width: total && i === 0 ? 3 : 2,
          // Dots only for the first polls: a line of one poll would not show.
          points: {size: 5, show: (u, si, i0, i1) => i1 - i0 < 2},
          value: (u, v) => (v == null ? '–' : v.toFixed(1)),
        })),
      ],
      legend: {show: true},
      cursor: {drag: {x: false, y: false}},
    };
    plot = new window.uPlot(opts, [[], ...labels.map(() => [])], holder);
  }

  return {
    el,
    update(data, labels, {ownScale = false} = {}) {
      const k = `${ownScale}\u0000${labels.join('\u0000')}`;
      if (!plot || k !== key) {
        key = k;
        build(labels, ownScale);
      }
      plot.setData(data);
      // uPlot widens a time scale of one point to years; show the minute
      // before it instead.
      if (data[0].length === 1) plot.setScale('x', {min: data[0][0] - 60, max: data[0][0]});
      // How many polls, lines and scales the chart shows, for tests and the curious.
      holder.dataset.points = String(data[0].length);
      holder.dataset.series = String(labels.length);
      holder.dataset.scales = total && ownScale ? '2' : '1';
    },
    destroy() {
      frame.disconnect();
      if (plot) plot.destroy();
      plot = null;
    },
  };
}

// chartFrame makes the figure, caption and holder of a uPlot chart that
// follows its container's width: the chart that plot() returns is resized
// with the holder, and size() is the size to build one at now. It returns
// {el, holder, size(), disconnect()}.
export function chartFrame(caption, summary, plot) {
  const holder = h('div', {class: 'chart', role: 'img', 'aria-label': summary});
  const el = h('figure', {class: 'chart-figure'}, h('figcaption', {}, caption), holder);
  const height = () => (holder.clientWidth < 500 ? 180 : 240);
  const observer = new ResizeObserver(() => {
    const p = plot();
    if (p && holder.clientWidth > 0) p.setSize({width: holder.clientWidth, height: height()});
  });
  observer.observe(holder);
  return {
    el,
    holder,
    size: () => ({width: Math.max(holder.clientWidth, 280), height: height()}),
    disconnect: () => observer.disconnect(),
  };
}
