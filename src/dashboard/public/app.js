// The kpipe dashboard page: history from the JSON API, live updates from /api/events (SSE).
// Plain browser JavaScript, no build step; uPlot is loaded before this file.
/* global uPlot */
'use strict'

;(() => {
  const RANGE_MS = { '5m': 5 * 60_000, '1h': 60 * 60_000, '24h': 24 * 60 * 60_000 }
  const HOST_FIELDS = ['cpu_usage', 'memory_usage', 'disk_usage', 'bytes_sent_per_s', 'bytes_received_per_s', 'interrupts_per_s']
  const $ = (id) => document.getElementById(id)
  const intFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 })
  const oneFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 })
  const compactFmt = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 })

  const state = {
    host: '',
    range: '5m',
    bucketMs: null,
    /** the last interval between live samples */
    stepMs: null,
    /** columns of the host charts: time (ms) and one array per field */
    data: emptyColumns(),
    liveBucket: null,
    hosts: new Map(),
    processing: null,
    errors: [],
    loadSeq: 0,
  }

  function emptyColumns() {
    const c = { time: [] }
    for (const f of HOST_FIELDS) c[f] = []
    return c
  }

  // ---------- formatting (every axis and figure carries its unit) ----------

  const pct = (v) => (v == null ? '–' : `${oneFmt.format(v)} %`)
  function bytesPerSecond(v) {
    if (v == null) return '–'
    const units = ['B/s', 'kB/s', 'MB/s', 'GB/s', 'TB/s']
    let i = 0
    let n = Math.abs(v)
    while (n >= 1000 && i < units.length - 1) {
      n /= 1000
      i++
    }
    return `${n >= 100 || i === 0 ? intFmt.format(n) : oneFmt.format(n)} ${units[i]}`
  }
  /** 1.2k, 3.4M, 5.6G: SI prefixes (the locale's compact "B" for billion would read as bytes) */
  function si(v) {
    const units = ['', 'k', 'M', 'G', 'T']
    let i = 0
    let n = Math.abs(v)
    while (n >= 1000 && i < units.length - 1) {
      n /= 1000
      i++
    }
    return `${v < 0 ? '-' : ''}${n >= 100 || i === 0 ? intFmt.format(n) : oneFmt.format(n)}${units[i]}`
  }
  const perSecond = (v) => (v == null ? '–' : `${si(v)}/s`)
  const hhmm = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
  const hhmmss = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })
  const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' })
  /**
   * Ticks of the time axes: whole minutes and up, so that every chart of a range (a wide one
   * has room for more ticks) labels its time the same way, hh:mm.
   */
  const TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440].map((minutes) => minutes * 60_000)
  /** Time axis labels on one line: seconds only where ticks fall between minutes, the date at midnight. */
  function timeLabels(_u, splits) {
    const withSeconds = splits.some((v) => v % 60_000 !== 0)
    return splits.map((v) => {
      const d = new Date(v)
      if (!withSeconds && d.getHours() === 0 && d.getMinutes() === 0) return dayFmt.format(d)
      return (withSeconds ? hhmmss : hhmm).format(d)
    })
  }
  const ms = (v) => (v == null ? '–' : v >= 100 ? intFmt.format(v) : oneFmt.format(v))
  const count = (v) => (v == null ? '–' : intFmt.format(v))

  function ago(time) {
    const s = Math.max(0, Math.round((Date.now() - time) / 1000))
    if (s < 60) return `${s} s ago`
    if (s < 3600) return `${Math.round(s / 60)} min ago`
    return `${Math.round(s / 3600)} h ago`
  }

  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim()

  // ---------- charts ----------

  const charts = []

  const HOST_CHARTS = [
    { id: 'cpu', series: [{ field: 'cpu_usage', label: 'CPU', color: '--c-cpu' }], fmt: pct, range: [0, 100] },
    { id: 'memory', series: [{ field: 'memory_usage', label: 'memory', color: '--c-memory' }], fmt: pct, range: [0, 100] },
    {
      id: 'network',
      // received first, so that sent is drawn over it; on an arcsinh scale (log-like, 0 allowed),
      // because a machine often sends a hundredth of what it receives and a linear axis flattens that to 0
      series: [
        { field: 'bytes_received_per_s', label: 'received', color: '--c-received' },
        { field: 'bytes_sent_per_s', label: 'sent', color: '--c-sent' },
      ],
      fmt: bytesPerSecond,
      logScale: true,
    },
    { id: 'disk', series: [{ field: 'disk_usage', label: 'disk', color: '--c-disk' }], fmt: pct, range: [0, 100] },
    { id: 'interrupts', series: [{ field: 'interrupts_per_s', label: 'interrupts', color: '--c-interrupts' }], fmt: perSecond },
  ]

  function axisFont() {
    return `11px ${getComputedStyle(document.body).fontFamily}`
  }

  /** Lines of a log-like axis: 0 and at most four powers of ten up to `max`, evenly spaced on the scale. */
  function decadeSplits(_u, _axis, _min, max) {
    const top = Math.max(1, Math.floor(Math.log10(Math.max(max, 10))))
    const step = Math.ceil(top / 4)
    const splits = [0]
    for (let e = top % step || step; e <= top; e += step) splits.push(10 ** e)
    return splits
  }

  /** A uPlot chart in `el`, sized to it; `def.fmt` formats y values with their unit. */
  function makeChart(el, def, xRange) {
    const grid = { stroke: css('--grid'), width: 1 }
    const ticks = { stroke: css('--grid'), width: 1, size: 4 }
    const yAxes = [
      { scale: 'y', stroke: css('--axis'), grid, ticks, font: axisFont(), size: def.axisSize ?? 64, values: (_u, splits) => splits.map((v) => def.fmt(v)), ...(def.logScale ? { splits: decadeSplits, filter: (_u, splits) => splits } : {}) },
    ]
    const scales = {
      x: { time: true, range: xRange },
      y: def.range ? { range: def.range } : def.logScale ? { distr: 4, asinh: 1, range: (_u, _min, max) => [0, max > 0 ? max * 2 : 10] } : { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
    }
    if (def.y2) {
      scales.y2 = { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] }
      yAxes.push({ scale: 'y2', side: 1, stroke: css('--axis'), grid: { show: false }, ticks, font: axisFont(), size: 56, values: (_u, splits) => splits.map((v) => def.y2fmt(v)) })
    }
    const opts = {
      width: Math.max(200, el.clientWidth),
      height: el.clientHeight,
      ms: 1,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      scales,
      axes: [{ stroke: css('--axis'), grid, ticks, font: axisFont(), size: 28, space: (_u, _i, _min, _max, dim) => (dim < 400 ? 44 : 64), incrs: TIME_INCRS, values: timeLabels }, ...yAxes],
      series: [
        {},
        ...def.series.map((s) => ({
          label: s.label,
          scale: s.scale ?? 'y',
          stroke: css(s.color),
          width: 1.5,
          fill: def.series.length === 1 ? `${css(s.color)}22` : undefined,
          points: { show: false },
          spanGaps: false,
        })),
      ],
      hooks: {
        setCursor: [(u) => def.onCursor?.(u.cursor.idx)],
        // the time labels drawn, for a reader of the page (and its tests): the canvas does not show them
        draw: [(u) => (el.dataset.timeLabels = (u.axes[0]._values ?? []).join('|'))],
      },
    }
    const chart = new uPlot(opts, [[], ...def.series.map(() => [])], el)
    const entry = { el, def, chart, xRange }
    charts.push(entry)
    return entry
  }

  function setChartData(entry, time, columns) {
    entry.chart.setData([time, ...columns])
    entry.el.dataset.points = String(time.length)
    // rows where every series is empty: the breaks drawn in the lines
    entry.el.dataset.gaps = String(time.filter((_t, i) => columns.every((c) => c[i] == null)).length)
    entry.el.dataset.first = time.length > 0 ? String(time[0]) : ''
    entry.el.dataset.last = time.length > 0 ? String(time[time.length - 1]) : ''
  }

  const resizer = new ResizeObserver((items) => {
    for (const item of items) {
      const entry = charts.find((c) => c.el === item.target)
      if (entry) entry.chart.setSize({ width: Math.max(200, Math.floor(item.contentRect.width)), height: Math.floor(item.contentRect.height) })
    }
  })

  const hostCharts = {}
  let throughputChart

  function lastValue(column) {
    for (let i = column.length - 1; i >= 0; i--) if (column[i] != null) return column[i]
    return null
  }

  function showNow(def, idx) {
    const values = def.series.map((s) => {
      const col = state.data[s.field]
      return idx == null ? lastValue(col) : col[idx]
    })
    const now = $(`now-${def.id}`)
    if (def.series.length === 1) {
      now.textContent = def.fmt(values[0])
      return
    }
    now.replaceChildren(
      ...def.series.flatMap((s, i) => {
        const swatch = document.createElement('i')
        swatch.className = 'swatch'
        swatch.style.background = css(s.color)
        const label = document.createElement('span')
        label.className = 'series-label'
        label.textContent = `${s.label} `
        return [swatch, label, document.createTextNode(def.fmt(values[i]))]
      }),
    )
  }

  function buildCharts() {
    for (const entry of charts.splice(0)) {
      resizer.unobserve(entry.el)
      entry.chart.destroy()
    }
    const hostRange = () => {
      const now = Date.now()
      return [now - RANGE_MS[state.range], now]
    }
    for (const def of HOST_CHARTS) {
      def.onCursor = (idx) => showNow(def, idx)
      hostCharts[def.id] = makeChart($(`chart-${def.id}`), def, hostRange)
      resizer.observe(hostCharts[def.id].el)
    }
    throughputChart = makeChart(
      $('chart-throughput'),
      {
        series: [
          { label: 'events/s', color: '--c-throughput' },
          { label: 'p99 ms', color: '--c-p99', scale: 'y2' },
        ],
        fmt: perSecond,
        y2: true,
        y2fmt: (v) => `${si(v)} ms`,
      },
      () => {
        const now = Date.now()
        return [now - RANGE_MS['5m'], now]
      },
    )
    resizer.observe(throughputChart.el)
    redrawHosts()
    redrawProcessing()
  }

  function redrawHosts() {
    for (const def of HOST_CHARTS) {
      setChartData(hostCharts[def.id], state.data.time, def.series.map((s) => state.data[s.field]))
      showNow(def, null)
    }
  }

  /** A processor publishes its metrics every second: more than this between two is a stretch where none ran. */
  const PROCESSING_GAP_MS = 5000

  function redrawProcessing() {
    const p = state.processing
    const h = p ? p.history : { time: [], throughput_per_s: [], latency_p99_ms: [] }
    const [time, columns] = withGaps(h.time, [h.throughput_per_s, h.latency_p99_ms], PROCESSING_GAP_MS)
    setChartData(throughputChart, time, columns)
  }

  /** The columns with a null row inside every gap longer than `gapMs`, so the line breaks there (as the host charts do). */
  function withGaps(time, columns, gapMs) {
    const outTime = []
    const out = columns.map(() => [])
    for (let i = 0; i < time.length; i++) {
      if (i > 0 && time[i] - time[i - 1] > gapMs) {
        outTime.push(time[i - 1] + 1)
        for (const column of out) column.push(null)
      }
      outTime.push(time[i])
      columns.forEach((column, c) => out[c].push(column[i]))
    }
    return [outTime, out]
  }

  // ---------- host metrics ----------

  function trimToRange() {
    const oldest = Date.now() - RANGE_MS[state.range]
    let drop = 0
    while (drop < state.data.time.length && state.data.time[drop] < oldest) drop++
    if (drop > 0) for (const key of Object.keys(state.data)) state.data[key].splice(0, drop)
  }

  /** Adds a live point: as it is for 5 min, averaged into the current bucket for 1 h and 24 h. */
  function addPoint(point) {
    const d = state.data
    const lastTime = d.time[d.time.length - 1]
    if (state.bucketMs == null) {
      if (lastTime != null && point.time <= lastTime) return
      // a gap is three usual intervals, at least 5 s (as the server judges it)
      const step = lastTime == null ? null : point.time - lastTime
      if (step != null && step > Math.max(5000, 3 * (state.stepMs ?? 0))) pushRow(lastTime + 1, null)
      else if (step != null) state.stepMs = step
      pushRow(point.time, point)
    } else {
      const start = Math.floor(point.time / state.bucketMs) * state.bucketMs
      const b = state.liveBucket
      if (!b || b.start !== start) {
        state.liveBucket = { start, sums: {}, counts: {} }
        if (lastTime !== start) pushRow(start, null)
      }
      const live = state.liveBucket
      const row = d.time.length - 1
      for (const f of HOST_FIELDS) {
        if (point[f] == null) continue
        live.sums[f] = (live.sums[f] ?? 0) + point[f]
        live.counts[f] = (live.counts[f] ?? 0) + 1
        d[f][row] = live.sums[f] / live.counts[f]
      }
    }
    trimToRange()
    redrawHosts()
  }

  function pushRow(time, point) {
    state.data.time.push(time)
    for (const f of HOST_FIELDS) state.data[f].push(point ? point[f] : null)
  }

  async function loadHistory() {
    const seq = ++state.loadSeq
    const params = new URLSearchParams({ range: state.range })
    if (state.host) params.set('host', state.host)
    const body = await api(`/api/metrics?${params}`)
    if (seq !== state.loadSeq) return
    if (!state.host && body.host) selectHost(body.host, false)
    state.bucketMs = body.bucket_ms
    state.historyUnavailable = body.history_unavailable
    state.liveBucket = null
    state.data = body.points
    trimToRange()
    redrawHosts()
    updateHostsEmpty()
  }

  function updateHostsEmpty() {
    $('hosts-empty').hidden = state.hosts.size > 0 || state.data.time.length > 0
    const seen = state.hosts.get(state.host)
    const meta = $('hosts-meta')
    meta.textContent = seen ? `last sample ${ago(seen)}` : ''
    if (state.historyUnavailable) {
      meta.textContent += `${seen ? ' · ' : ''}live only, no history`
      meta.title = state.historyUnavailable
    }
  }

  function noteHost(host, time) {
    const known = state.hosts.has(host)
    state.hosts.set(host, Math.max(state.hosts.get(host) ?? 0, time))
    if (!known) renderHostOptions()
  }

  function renderHostOptions() {
    const select = $('host-select')
    const hosts = [...state.hosts.keys()].sort()
    select.replaceChildren(
      ...(hosts.length === 0 ? [new Option('no hosts yet', '')] : hosts.map((h) => new Option(h, h, false, h === state.host))),
    )
    select.disabled = hosts.length === 0
  }

  function selectHost(host, reload = true) {
    state.host = host
    renderHostOptions()
    $('host-select').value = host
    if (reload) void loadHistory().catch(showFailure)
  }

  async function loadHosts() {
    const body = await api('/api/hosts')
    for (const h of body.hosts) noteHost(h.host, Date.parse(h.last_sample))
    if (!state.host && body.hosts.length > 0) selectHost(body.hosts[0].host, false)
    renderHostOptions()
  }

  // ---------- login pipeline ----------

  function renderSummary(s) {
    const t = s.total
    const filtered = t.filtered.stale + t.filtered.app_version
    const errors = t.errors.invalid_json + t.errors.missing_fields + t.errors.invalid_field
    const all = t.processed + filtered + errors
    $('t-received').textContent = s.instances.length ? count(t.received) : '–'
    $('outcome-total').textContent = all > 0 ? `${count(all)} events` : ''
    const share = (n) => (all > 0 ? `${(n * 100) / all}%` : '0')
    $('seg-processed').style.width = share(t.processed)
    $('seg-filtered').style.width = share(filtered)
    $('seg-errors').style.width = share(errors)
    const withPct = (n) => (all > 0 ? `${count(n)} · ${oneFmt.format((n * 100) / all)} %` : count(n))
    $('o-processed').textContent = withPct(t.processed)
    $('o-stale').textContent = withPct(t.filtered.stale)
    $('o-version').textContent = withPct(t.filtered.app_version)
    $('o-invalid-json').textContent = withPct(t.errors.invalid_json)
    $('o-missing').textContent = withPct(t.errors.missing_fields)
    $('o-invalid-field').textContent = withPct(t.errors.invalid_field)
    renderBars($('bars-devices'), t.device_types)
    renderBars($('bars-locales'), t.locales)
    const counted = (map) => {
      const n = Object.values(map).reduce((a, b) => a + b, 0)
      return n > 0 ? `${count(n)} events` : ''
    }
    $('devices-total').textContent = counted(t.device_types)
    $('locales-total').textContent = counted(t.locales)
    const n = s.instances.length
    const stopped = s.stopped && s.stopped.length ? ` · ${s.stopped.length} stopped, not counted` : ''
    $('logins-meta').textContent = n ? `${n} processor instance${n === 1 ? '' : 's'} · summary ${ago(Date.parse(s.updated_at))}${stopped}` : ''
    state.summarySeen = n > 0
    updateLoginsEmpty()
  }

  function renderBars(list, counts) {
    const entries = Object.entries(counts).sort((a, b) => b[1] - a[1])
    const max = entries.length ? entries[0][1] : 0
    if (entries.length === 0) {
      const li = document.createElement('li')
      li.className = 'placeholder'
      li.textContent = 'nothing counted yet'
      list.replaceChildren(li)
      return
    }
    list.replaceChildren(
      ...entries.slice(0, 30).map(([key, n]) => {
        const li = document.createElement('li')
        const k = document.createElement('span')
        k.className = 'key'
        k.textContent = key
        k.title = key
        const track = document.createElement('span')
        track.className = 'track'
        const fill = document.createElement('span')
        fill.className = 'fill'
        fill.style.width = `${max > 0 ? (n * 100) / max : 0}%`
        track.append(fill)
        const c = document.createElement('span')
        c.className = 'count'
        c.textContent = compactFmt.format(n)
        li.append(k, track, c)
        return li
      }),
    )
  }

  function renderProcessing(p) {
    state.processing = p
    $('t-throughput').textContent = p.throughput_per_s == null ? '–' : oneFmt.format(p.throughput_per_s)
    $('t-p99').textContent = ms(p.latency_ms.p99)
    $('t-lag').textContent = p.throughput_per_s == null ? '–' : count(p.consumer_lag.reduce((s, l) => s + l.lag, 0))
    redrawProcessing()
    updateLoginsEmpty()
  }

  function renderErrors() {
    const list = $('error-list')
    $('errors-count').textContent = state.errors.length ? `latest ${state.errors.length}` : ''
    if (state.errors.length === 0) {
      const li = document.createElement('li')
      li.className = 'placeholder'
      li.textContent = 'no errors seen'
      list.replaceChildren(li)
      return
    }
    list.replaceChildren(
      ...state.errors.map((e) => {
        const li = document.createElement('li')
        const line = document.createElement('div')
        line.className = 'line1'
        const type = document.createElement('span')
        type.className = 'type'
        type.textContent = e.error_type
        const when = document.createElement('time')
        if (e.time) {
          when.dateTime = e.time
          when.textContent = hhmmss.format(new Date(e.time))
        }
        const where = document.createElement('span')
        where.className = 'where'
        where.textContent = e.source ? `${e.source.topic}/${e.source.partition}@${e.source.offset}` : ''
        line.append(type, when, where)
        const msg = document.createElement('div')
        msg.className = 'msg'
        msg.textContent = e.error || (e.fields.length ? `fields: ${e.fields.join(', ')}` : '')
        msg.title = msg.textContent
        li.append(line, msg)
        return li
      }),
    )
    updateLoginsEmpty()
  }

  function updateLoginsEmpty() {
    $('logins-empty').hidden = Boolean(state.summarySeen || (state.processing && state.processing.instances.length > 0) || state.errors.length > 0)
  }

  // ---------- Kafka ----------

  async function loadKafka() {
    try {
      const k = await api('/api/kafka')
      const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`
      $('kafka-meta').textContent = `${plural(k.topics.length, 'topic')} · ${plural(k.groups.length, 'consumer group')} · updated ${hhmmss.format(new Date(k.updated_at))}`
      $('topics-count').textContent = ''
      $('topics-body').replaceChildren(
        ...k.topics.map((t) => row([t.name, [count(t.partitions.length), 'num'], [count(t.partitions.reduce((s, p) => s + p.end_offset, 0)), 'num'], [count(t.records), 'num']])),
      )
      $('groups-body').replaceChildren(
        ...k.groups.map((g) =>
          row([
            g.group_id,
            g.state,
            [count(g.lag), g.lag > 1000 ? 'num lagging' : 'num'],
            [g.partitions.filter((p) => p.lag > 0).map((p) => `${p.topic}/${p.partition}: ${count(p.lag)}`).join(', ') || (g.partitions.length ? 'caught up' : 'no committed offsets'), 'detail'],
          ]),
        ),
      )
      if (k.groups.length === 0) $('groups-body').replaceChildren(row([['no consumer groups yet', 'detail']]))
      const empty = k.topics.length === 0
      $('kafka-empty').hidden = !empty
      if (empty) {
        $('kafka-empty-title').textContent = 'No topics yet'
        $('kafka-empty-text').textContent = 'Create them with kpipe topics create, or run the whole stack with kpipe up.'
      }
    } catch (error) {
      $('kafka-meta').textContent = ''
      $('kafka-empty').hidden = false
      $('kafka-empty-title').textContent = 'Kafka is not reachable'
      $('kafka-empty-text').textContent = `${error.message}. Start a broker with kpipe kafka start (or kpipe up), or point KAFKA_BROKERS at yours.`
    }
  }

  // ---------- replay backlog ----------

  async function loadReplayBacklog() {
    try {
      const b = await api('/api/replay-backlog')
      const rows = []
      for (const t of b.topics) {
        for (const c of t.categories) {
          const tr = row([t.topic, c.category, [count(c.count), 'num'], ago(Date.parse(c.newest)), [c.command, 'command']])
          tr.title = c.note
          rows.push(tr)
        }
      }
      if (rows.length === 0) rows.push(row([['nothing parked: no dead letters, no filtered events', 'detail']]))
      $('replay-body').replaceChildren(...rows)
      $('replay-meta').textContent = `updated ${hhmmss.format(new Date(b.updated_at))}`
    } catch (error) {
      $('replay-body').replaceChildren(row([[error.message, 'detail']]))
      $('replay-meta').textContent = ''
    }
    for (const td of $('replay-body').querySelectorAll('td.detail')) td.colSpan = 5
  }

  function row(cells) {
    const tr = document.createElement('tr')
    for (const cell of cells) {
      const td = document.createElement('td')
      const [text, cls] = Array.isArray(cell) ? cell : [cell, '']
      td.textContent = text
      if (cls) td.className = cls
      if (cls === 'detail' && cells.length === 1) td.colSpan = 4
      tr.append(td)
    }
    return tr
  }

  // ---------- transport ----------

  async function api(path) {
    const res = await fetch(path, { headers: { accept: 'application/json' }, credentials: 'same-origin' })
    if (!res.ok) {
      let message = `${res.status} ${res.statusText}`
      try {
        message = (await res.json()).error ?? message
      } catch {
        // not JSON: keep the status line
      }
      throw new Error(message)
    }
    return res.json()
  }

  function setStatus(kind, text) {
    $('status').dataset.state = kind
    $('status-text').textContent = text
  }

  function showFailure(error) {
    setStatus('down', `error: ${error.message}`)
  }

  const EVENT_HANDLERS = {
    sample: (data) => {
      const { host, point } = JSON.parse(data)
      // sample time to arrival here, for anyone checking the "under a second" promise
      document.body.dataset.liveLagMs = String(Date.now() - point.time)
      noteHost(host, point.time)
      if (!state.host) selectHost(host)
      else if (host === state.host) addPoint(point)
      updateHostsEmpty()
    },
    summary: (data) => renderSummary(JSON.parse(data)),
    processing: (data) => renderProcessing(JSON.parse(data)),
    'login-error': (data) => {
      state.errors.unshift(JSON.parse(data))
      state.errors.length = Math.min(state.errors.length, 50)
      renderErrors()
    },
  }

  /** Dispatches one server-sent event block (`event:` and `data:` lines; `:` comments skipped). */
  function dispatchEvent(block) {
    let event = 'message'
    const data = []
    for (const line of block.split(/\r?\n/)) {
      if (line === '' || line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'event') event = value
      else if (field === 'data') data.push(value)
    }
    if (data.length > 0) EVENT_HANDLERS[event]?.(data.join('\n'))
  }

  /**
   * The live stream of /api/events, read as a streamed fetch rather than an EventSource: an open
   * EventSource counts as a network fetch that never ends, and tools that wait for the network to
   * settle (a headless browser with a virtual time budget, screenshot services) then wait for
   * ever. Reconnects every 2 s after a loss, as EventSource would, and fetches what was missed.
   */
  async function connect() {
    let lost = false
    for (;;) {
      try {
        const res = await fetch('/api/events', { headers: { accept: 'text/event-stream' }, credentials: 'same-origin', cache: 'no-store' })
        if (!res.ok || !res.body) throw new Error(`${res.status} ${res.statusText}`)
        setStatus('live', 'live')
        // back after a lost connection (or a restarted dashboard): fetch what was missed
        if (lost) void loadAll()
        lost = false
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
        let buffer = ''
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          buffer += value
          let end
          while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
            const block = buffer.slice(0, end)
            buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '')
            dispatchEvent(block)
          }
        }
      } catch {
        // a lost or refused connection: retried below
      }
      lost = true
      setStatus('connecting', 'reconnecting…')
      await new Promise((resolve) => setTimeout(resolve, 2000))
    }
  }

  // ---------- controls ----------

  $('host-select').addEventListener('change', (e) => selectHost(e.target.value))
  for (const button of document.querySelectorAll('#range-buttons button')) {
    button.addEventListener('click', () => {
      state.range = button.dataset.range
      for (const b of document.querySelectorAll('#range-buttons button')) b.setAttribute('aria-pressed', String(b === button))
      void loadHistory().catch(showFailure)
    })
  }
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', buildCharts)

  // the token, once exchanged for a cookie, has no business staying in the address bar
  if (new URLSearchParams(location.search).has('token')) history.replaceState(null, '', location.pathname)

  async function loadAll() {
    const results = await Promise.allSettled([
      loadHosts().then(loadHistory),
      api('/api/summary').then(renderSummary),
      api('/api/processing').then(renderProcessing),
      api('/api/errors').then((body) => {
        state.errors = body.errors
        renderErrors()
      }),
      loadKafka(),
      loadReplayBacklog(),
    ])
    const failed = results.find((r) => r.status === 'rejected')
    if (failed) showFailure(failed.reason)
  }

  async function start() {
    buildCharts()
    renderErrors()
    void connect()
    await loadAll()
    setInterval(loadKafka, 5000)
    setInterval(loadReplayBacklog, 30_000)
    setInterval(() => {
      $('clock').textContent = `${dayFmt.format(new Date())} ${hhmmss.format(new Date())}`
      updateHostsEmpty()
      // keep the time axes moving when no sample arrives
      trimToRange()
      redrawHosts()
      redrawProcessing()
    }, 1000)
    document.body.dataset.ready = 'true'
  }

  void start()
})()
