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

// rateChart makes a figure with a caption and a uPlot chart of one line per label.
// It returns {el, update(data, labels)}: update redraws with uPlot data
// ([xs, ys…]) and rebuilds the chart when the labels change; destroy frees it.
export function rateChart(caption, summary) {
  const holder = h('div', {class: 'chart', role: 'img', 'aria-label': summary});
  const el = h('figure', {class: 'chart-figure'}, h('figcaption', {}, caption), holder);
  let plot = null;
  let key = '';
  const observer = new ResizeObserver(() => {
    if (plot && holder.clientWidth > 0) plot.setSize({width: holder.clientWidth, height: height()});
  });
  observer.observe(holder);

  function height() {
    return holder.clientWidth < 500 ? 180 : 240;
  }

  function build(labels) {
    if (plot) plot.destroy();
    const opts = {
      width: Math.max(holder.clientWidth, 280),
      height: height(),
      // At least a minute wide, so that the first polls do not get sub-second ticks.
      scales: {
        x: {time: true, range: (u, min, max) => (max == null ? [min, max] : [Math.min(min, max - 60), max])},
        y: {range: (u, min, max) => [0, Math.max(1, (max || 0) * 1.1)]},
      },
      axes: [
        {stroke: '#4b5563', grid: {stroke: '#e5e7eb'}},
        {stroke: '#4b5563', grid: {stroke: '#e5e7eb'}, label: 'events/s', size: 56},
      ],
      series: [
        {label: 'Time', value: (u, v) => (v == null ? '–' : new Date(v * 1000).toLocaleTimeString())},
        ...labels.map((l, i) => ({label: l, stroke: color(i), width: 2, points: {show: false}, value: (u, v) => (v == null ? '–' : v.toFixed(1))})),
      ],
      legend: {show: true},
      cursor: {drag: {x: false, y: false}},
    };
    plot = new window.uPlot(opts, [[], ...labels.map(() => [])], holder);
  }

  return {
    el,
    update(data, labels) {
      const k = labels.join('\u0000');
      if (!plot || k !== key) {
        key = k;
        build(labels);
      }
      plot.setData(data);
      // How many polls the chart shows, for tests and the curious.
      holder.dataset.points = String(data[0].length);
    },
    destroy() {
      observer.disconnect();
      if (plot) plot.destroy();
      plot = null;
    },
  };
}
