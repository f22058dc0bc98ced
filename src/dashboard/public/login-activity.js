// The login panel's activity charts: logins per minute by outcome, and the device type, locale and
// app version split over 1 h / 24 h / 7 d, from /api/logins/activity (the login_activity table).
// Plain browser JavaScript, no build step; uPlot is loaded before this file.
/* global uPlot */
'use strict'

;(() => {
  const $ = (id) => document.getElementById(id)
  const compactFmt = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 })
  const rateFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 })
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888'
  // processed first, then filtered, then errors: the same order as the outcome card
  const COLORS = { processed: '#16a34a', 'filtered:stale': '#d97706', 'filtered:app_version': '#ca8a04', 'error:invalid_json': '#dc2626', 'error:missing_fields': '#e11d48', 'error:invalid_field': '#be123c' }
  const SPARE = ['#7c3aed', '#0891b2', '#db2777', '#64748b', '#2563eb', '#ea580c']
  const state = { range: '1h', seq: 0, chart: null, outcomes: [] }

  function colorOf(outcome, i) {
    return COLORS[outcome] ?? SPARE[i % SPARE.length]
  }

  function order(outcomes) {
    const rank = (o) => (o === 'processed' ? 0 : o.startsWith('filtered:') ? 1 : o.startsWith('error:') ? 2 : 3)
    return [...outcomes].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1))
  }

  function buildChart(outcomes, xRange) {
    const el = $('chart-activity')
    state.chart?.destroy()
    const grid = { stroke: css('--grid'), width: 1 }
    const font = `11px ${getComputedStyle(document.body).fontFamily}`
    state.chart = new uPlot({
      width: Math.max(200, el.clientWidth),
      height: el.clientHeight,
      ms: 1,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, range: () => xRange }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: css('--axis'), grid, font, size: 28 },
        { stroke: css('--axis'), grid, font, size: 56, values: (_u, splits) => splits.map((v) => `${compactFmt.format(v)}/min`) },
      ],
      series: [{}, ...outcomes.map((o, i) => ({ label: o, stroke: colorOf(o, i), width: 1.5, points: { show: false } }))],
    }, [[], ...outcomes.map(() => [])], el)
    state.outcomes = outcomes
  }

  function renderLegend(outcomes, view) {
    const legend = $('activity-legend')
    const totals = new Map(view.split.outcome.map((o) => [o.value, o.logins]))
    legend.replaceChildren(...outcomes.map((o, i) => {
      const item = document.createElement('span')
      const swatch = document.createElement('i')
      swatch.className = 'swatch'
      swatch.style.background = colorOf(o, i)
      item.append(swatch, `${o} ${compactFmt.format(totals.get(o) ?? 0)} `)
      return item
    }))
  }

  function renderBars(list, entries, what) {
    const max = entries.reduce((m, e) => Math.max(m, e.logins), 0)
    const head = document.createElement('li')
    head.className = 'placeholder'
    head.textContent = entries.length === 0 ? `${what}: nothing counted in this range` : what
    list.replaceChildren(head, ...entries.map((e) => {
      const li = document.createElement('li')
      const key = document.createElement('span')
      key.className = 'key'
      key.textContent = e.value === '' ? '(unknown)' : e.value
      key.title = key.textContent
      const track = document.createElement('span')
      track.className = 'track'
      const fill = document.createElement('span')
      fill.className = 'fill'
      fill.style.width = `${max > 0 ? (e.logins * 100) / max : 0}%`
      track.append(fill)
      const count = document.createElement('span')
      count.className = 'count'
      count.textContent = compactFmt.format(e.logins)
      li.append(key, track, count)
      return li
    }))
  }

  async function load() {
    const seq = ++state.seq
    const res = await fetch(`/api/logins/activity?range=${encodeURIComponent(state.range)}`, { headers: { accept: 'application/json' }, credentials: 'same-origin' })
    if (!res.ok) throw new Error(`login activity: ${res.status} ${res.statusText}`)
    const view = await res.json()
    if (seq !== state.seq) return
    const outcomes = order(Object.keys(view.per_minute.outcomes))
    const xRange = [Date.parse(view.from), Date.parse(view.to)]
    if (!state.chart || outcomes.join('\n') !== state.outcomes.join('\n')) buildChart(outcomes, xRange)
    else state.chart.setScale('x', { min: xRange[0], max: xRange[1] })
    state.chart.setData([view.per_minute.time, ...outcomes.map((o) => view.per_minute.outcomes[o])])
    const el = $('chart-activity')
    el.dataset.points = String(view.per_minute.time.length)
    el.dataset.total = String(view.total)
    el.dataset.range = view.range
    renderLegend(outcomes, view)
    $('activity-total').textContent = view.history_unavailable ? view.history_unavailable : `${compactFmt.format(view.total)} logins, ${rateFmt.format(view.total / ((xRange[1] - xRange[0]) / 60_000))}/min`
    renderBars($('activity-devices'), view.split.device_type, 'Device types')
    renderBars($('activity-locales'), view.split.locale, 'Locales')
    renderBars($('activity-versions'), view.split.app_version, 'App versions')
  }

  const refresh = () => load().catch((error) => {
    $('activity-total').textContent = error.message
  })

  function start() {
    if (!$('chart-activity') || typeof uPlot === 'undefined') return
    for (const button of document.querySelectorAll('#activity-range button')) {
      button.addEventListener('click', () => {
        state.range = button.dataset.range
        for (const b of document.querySelectorAll('#activity-range button')) b.setAttribute('aria-pressed', String(b === button))
        void refresh()
      })
    }
    new ResizeObserver(() => {
      const el = $('chart-activity')
      state.chart?.setSize({ width: Math.max(200, el.clientWidth), height: el.clientHeight })
    }).observe($('chart-activity'))
    void refresh()
    // the sink commits every batch; a refresh every 10 s keeps the current minute moving
    setInterval(refresh, 10_000)
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start)
  else start()
})()
