// driftline's line charts: plain canvas, no library. lineChart() draws and records
// what it drew in the canvas's data-points / data-series attributes (the browser test
// and anyone inspecting the page read them).
"use strict";

const Charts = (() => {
  const PALETTE = ["#1f5fbf", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285",
                   "#e67700", "#5c940d"];
  const MUTED = "#c9ced6";
  const MARGIN = { left: 52, right: 14, top: 12, bottom: 26 };

  function niceStep(range, ticks) {
    const raw = range / Math.max(ticks, 1);
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const unit = [1, 2, 2.5, 5, 10].find((m) => m * power >= raw) || 10;
    return unit * power;
  }

  function formatNumber(value) {
    const size = Math.abs(value);
    if (size >= 1e6) return (value / 1e6).toFixed(1) + "M";
    if (size >= 1e4) return (value / 1e3).toFixed(0) + "k";
    if (size >= 100 || value === Math.round(value)) return value.toFixed(0);
    return value.toFixed(size >= 10 ? 1 : 2);
  }

  function formatTime(seconds, span) {
    const date = new Date(seconds * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    const clock = pad(date.getHours()) + ":" + pad(date.getMinutes()) +
      (span < 3600 ? ":" + pad(date.getSeconds()) : "");
    if (span < 86400) return clock;
    return (date.getMonth() + 1) + "/" + date.getDate() + " " + clock;
  }

  // Fit the canvas's pixel buffer to its CSS size; return a context in CSS pixels.
  function prepare(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(canvas.clientWidth, 100);
    const height = Math.max(canvas.clientHeight, 80);
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    return { ctx, width, height };
  }

  // series: [{name, color, width, points: [[x, y], ...]}]; options: {threshold,
  // yMinTop (smallest top of the y axis), empty (text without data)}.
  function lineChart(canvas, series, options = {}) {
    const { ctx, width, height } = prepare(canvas);
    const all = series.flatMap((s) => s.points);
    canvas.dataset.points = String(all.length);
    canvas.dataset.series = String(series.filter((s) => s.points.length).length);
    ctx.font = "11px system-ui, 'DejaVu Sans', sans-serif";
    if (!all.length) {
      ctx.fillStyle = "#8a919c";
      ctx.textAlign = "center";
      ctx.fillText(options.empty || "waiting for data", width / 2, height / 2);
      return;
    }
    let xMin = Math.min(...all.map((p) => p[0]));
    let xMax = Math.max(...all.map((p) => p[0]));
    if (xMax === xMin) { xMin -= 1; xMax += 1; }
    const yMax = Math.max(options.yMinTop || 0, ...all.map((p) => p[1])) * 1.08 || 1;
    const plot = { x: MARGIN.left, y: MARGIN.top, w: width - MARGIN.left - MARGIN.right,
                   h: height - MARGIN.top - MARGIN.bottom };
    const sx = (x) => plot.x + ((x - xMin) / (xMax - xMin)) * plot.w;
    const sy = (y) => plot.y + plot.h - (Math.max(y, 0) / yMax) * plot.h;

    // Grid and axis labels.
    ctx.strokeStyle = "#eceef1";
    ctx.fillStyle = "#6b7280";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const yStep = niceStep(yMax, 4);
    for (let y = 0; y <= yMax + 1e-9; y += yStep) {
      ctx.beginPath();
      ctx.moveTo(plot.x, Math.round(sy(y)) + 0.5);
      ctx.lineTo(plot.x + plot.w, Math.round(sy(y)) + 0.5);
      ctx.stroke();
      ctx.fillText(formatNumber(y), plot.x - 6, sy(y));
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    // x is in seconds: no more ticks than seconds shown, so no label repeats.
    const ticks = Math.max(1, Math.min(Math.floor(plot.w / 110), Math.floor(xMax - xMin)));
    for (let i = 0; i <= ticks; i++) {
      const x = xMin + ((xMax - xMin) * i) / ticks;
      ctx.textAlign = i === 0 ? "left" : i === ticks ? "right" : "center";
      ctx.fillText(formatTime(x, xMax - xMin), sx(x), plot.y + plot.h + 7);
    }
    ctx.strokeStyle = "#9aa1ac";
    ctx.beginPath();
    ctx.moveTo(plot.x, plot.y + plot.h + 0.5);
    ctx.lineTo(plot.x + plot.w, plot.y + plot.h + 0.5);
    ctx.stroke();

    if (options.threshold !== undefined && options.threshold <= yMax) {
      ctx.strokeStyle = "#c62828";
      ctx.setLineDash([5, 4]);
      ctx.beginPath();
      ctx.moveTo(plot.x, sy(options.threshold));
      ctx.lineTo(plot.x + plot.w, sy(options.threshold));
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = "#c62828";
      ctx.textAlign = "left";
      ctx.textBaseline = "bottom";
      ctx.fillText("threshold", plot.x + 4, sy(options.threshold) - 2);
    }

    for (const line of series) {
      if (!line.points.length) continue;
      ctx.strokeStyle = line.color;
      ctx.fillStyle = line.color;
      ctx.lineWidth = line.width || 1.5;
      ctx.beginPath();
      line.points.forEach(([x, y], i) => (i ? ctx.lineTo(sx(x), sy(y)) : ctx.moveTo(sx(x), sy(y))));
      ctx.stroke();
      if (line.points.length <= 40) {
        for (const [x, y] of line.points) {
          ctx.beginPath();
          ctx.arc(sx(x), sy(y), 2.2, 0, 2 * Math.PI);
          ctx.fill();
        }
      }
    }
  }

  return { PALETTE, MUTED, lineChart, formatNumber, formatTime };
})();
