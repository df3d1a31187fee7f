// vidx web UI: search (text, clip, similar), a result grid that pages in as you scroll, a player
// that opens at the match and marks it, and the libraries with their indexing jobs.
// Plain DOM, no framework. Server text is only ever put in the page through textContent.
'use strict';

(() => {
  const PAGE_SIZE = 50;
  // a clip query is uploaded and encoded again for every page: fewer, larger pages
  const CLIP_PAGE_SIZE = 200;
  const MODALITIES = ['lexical', 'vision', 'speech', 'audio'];
  const MODALITY_LABELS = {lexical: 'Words', vision: 'Vision', speech: 'Speech', audio: 'Audio'};
  const JOB_POLL_MS = 1000;

  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  // The server's access token, when it has one, comes in the UI's own URL (?token=...).
  const token = params.get('token') || '';

  const state = {
    info: null,  // GET /api/info, or null when the server has no such endpoint
    available: ['lexical'],
    query: null,  // {kind: 'text'|'similar'|'clip', ...}
    nextPageToken: null,
    loading: false,
    generation: 0,  // bumps on every new query so late pages of an old one are dropped
    shown: 0,
    total: 0,
    current: null,  // the result open in the player
    jobTimer: 0,
    maxUploadBytes: 0,
    unauthorized: false,  // /api/info answered 401: the token is missing or wrong
    paused: false,        // a page failed: wait for "load more" instead of scrolling
  };

  // ---- HTTP ------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    if (token) headers.set('Authorization', 'Bearer ' + token);
    let response;
    try {
      response = await fetch(path, {...options, headers, cache: 'no-store'});
    } catch (e) {
      throw new ApiError(0, 'network', 'the server cannot be reached (' + e.message + ')');
    }
    let body = null;
    const type = response.headers.get('Content-Type') || '';
    if (type.includes('application/json')) {
      try {
        body = await response.json();
      } catch (e) {
        body = null;
      }
    }
    if (!response.ok) {
      const err = body && body.error ? body.error : {};
      throw new ApiError(
          response.status, err.code || 'http_' + response.status,
          err.message || 'the server answered ' + response.status);
    }
    return body;
  }

  // img and video sources cannot send a header: the token rides in the query string.
  function mediaUrl(path) {
    if (!token) return path;
    return path + (path.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
  }

  // 404 (no such endpoint) and 501 mean this server does not offer the feature (yet).
  function isMissing(e) {
    return e instanceof ApiError &&
        (e.status === 501 || e.status === 405 ||
         (e.status === 404 && (e.code === 'http_404' || /no such endpoint/i.test(e.message))));
  }

  // ---- small helpers ---------------------------------------------------------------------
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function formatTime(ms) {
    if (!Number.isFinite(ms) || ms < 0) ms = 0;
    const total = Math.floor(ms / 1000);
    const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    const ss = String(s).padStart(2, '0');
    return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
  }

  // Scores differ in scale by modality (BM25-like, cosines): three significant digits.
  function formatScore(x) {
    const v = Number(x);
    if (!Number.isFinite(v)) return '\u2013';
    return v !== 0 && Math.abs(v) < 0.001 ? v.toExponential(2) : v.toPrecision(3);
  }

  function setStatus(text, kind) {
    const node = $('status');
    node.textContent = text;
    node.dataset.kind = kind || 'info';
  }

  // The snippet with its highlights as <mark>; highlights are [start, end) in code points.
  function snippetNode(match) {
    const p = el('p', 'snippet');
    const text = match && typeof match.snippet === 'string' ? match.snippet : '';
    if (!text && !(match && match.source)) return null;
    const points = Array.from(text);
    const spans = (Array.isArray(match.highlights) ? match.highlights : [])
                      .filter((h) => Array.isArray(h) && h.length === 2)
                      .map(([a, b]) => [Math.max(0, a | 0), Math.min(points.length, b | 0)])
                      .filter(([a, b]) => a < b)
                      .sort((x, y) => x[0] - y[0]);
    let at = 0;
    for (const [a, b] of spans) {
      if (a < at) continue;  // overlapping spans: keep the first
      if (a > at) p.append(points.slice(at, a).join(''));
      p.append(el('mark', null, points.slice(a, b).join('')));
      at = b;
    }
    if (at < points.length) p.append(points.slice(at).join(''));
    if (match.source) p.prepend(el('span', 'source', match.source), ' ');
    return p;
  }

  // ---- modalities ------------------------------------------------------------------------
  function buildModalities() {
    const box = $('modalities');
    box.querySelectorAll('label').forEach((n) => n.remove());
    for (const m of MODALITIES) {
      const label = el('label', 'modality');
      const input = document.createElement('input');
      input.type = 'checkbox';
      input.name = 'modality';
      input.value = m;
      input.id = 'modality-' + m;
      const on = state.available.includes(m);
      input.disabled = !on;
      label.title = on ?
          `Search ${MODALITY_LABELS[m].toLowerCase()}` :
          `${MODALITY_LABELS[m]}: not available (index and serve with a model that has it)`;
      label.append(input, ' ', MODALITY_LABELS[m]);
      box.append(label);
    }
    applyModalities(params.get('modalities'));
  }

  // Ticks what a linked URL asks for (?modalities=a,b), or everything available.
  function applyModalities(list) {
    const wanted = (list || '').split(',').filter((m) => state.available.includes(m));
    for (const input of document.querySelectorAll('input[name=modality]'))
      input.checked = !input.disabled && (!wanted.length || wanted.includes(input.value));
  }

  function chosenModalities() {
    return Array.from(document.querySelectorAll('input[name=modality]:checked'))
        .map((i) => i.value);
  }

  async function loadInfo() {
    try {
      state.info = await api('/api/info');
      // /api/info answers without the token and says whether this page's token is good
      state.unauthorized =
          !!(state.info && state.info.token_required && state.info.authorized === false);
      const model = state.info && state.info.model;
      const mods = new Set(['lexical']);
      if (model && Array.isArray(model.modalities)) model.modalities.forEach((m) => mods.add(m));
      state.available = MODALITIES.filter((m) => mods.has(m));
    } catch (e) {
      state.info = null;
      state.available = ['lexical'];
      if (e.status === 401)
        state.unauthorized = true;
      else if (!isMissing(e))
        setStatus('Could not read the server\'s capabilities: ' + e.message, 'error');
    }
    buildModalities();
    const model = state.info && state.info.model;
    // clip search needs a model with a vision tower; an old server (no /api/info) may have one
    const clip = !state.info || !!(model && model.clip);
    $('clip-toggle').hidden = !clip;
    state.maxUploadBytes = state.info && Number.isFinite(state.info.max_upload_bytes) ?
        state.info.max_upload_bytes :
        0;
  }

  // ---- search ----------------------------------------------------------------------------
  function startQuery(query, push = true) {
    state.generation++;
    state.query = query;
    state.nextPageToken = null;
    state.shown = 0;
    state.total = 0;
    state.loading = false;
    state.paused = false;
    $('results').replaceChildren();
    $('more').hidden = true;
    if (query.kind !== 'text') $('q').value = '';  // the box shows only what is searched
    if (push) {
      const url = new URL(location.href);
      url.searchParams.delete('q');
      url.searchParams.delete('similar');
      url.searchParams.delete('modalities');
      if (query.kind === 'text') url.searchParams.set('q', query.text);
      if (query.kind === 'similar') url.searchParams.set('similar', String(query.segment));
      if (query.kind === 'text' && query.modalities.length &&
          query.modalities.length !== state.available.length)
        url.searchParams.set('modalities', query.modalities.join(','));
      history.pushState(null, '', url);
    }
    setStatus('Searching\u2026', 'busy');
    return loadPage();
  }

  function searchText(text, push = true) {
    text = text.trim();
    if (!text) {
      setStatus('Type some words to search for.', 'info');
      $('q').focus();
      return;
    }
    const modalities = chosenModalities();
    if (!modalities.length) {
      setStatus('Choose at least one kind of content to search in.', 'error');
      return;
    }
    document.title = text + ' \u2013 vidx';
    return startQuery({kind: 'text', text, modalities}, push);
  }

  function searchSimilar(segment, label, push = true) {
    document.title = 'Similar \u2013 vidx';
    return startQuery({kind: 'similar', segment, label: label || 'segment ' + segment}, push);
  }

  function requestPage(query, pageToken) {
    if (query.kind === 'text') {
      const q = new URLSearchParams({q: query.text, limit: String(PAGE_SIZE)});
      if (query.modalities.length) q.set('modalities', query.modalities.join(','));
      if (pageToken) q.set('page_token', pageToken);
      return api('/api/search?' + q.toString());
    }
    if (query.kind === 'similar') {
      const q = new URLSearchParams({limit: String(PAGE_SIZE)});
      if (pageToken) q.set('page_token', pageToken);
      return api(`/api/segments/${encodeURIComponent(query.segment)}/similar?` + q.toString());
    }
    // clip: the upload is sent again with each page (the server keeps no query state)
    const form = new FormData();
    form.append('clip', query.file, query.file.name);
    if (query.startMs !== null) form.append('start_ms', String(query.startMs));
    if (query.endMs !== null) form.append('end_ms', String(query.endMs));
    form.append('limit', String(CLIP_PAGE_SIZE));
    if (query.modalities.length) form.append('modalities', query.modalities.join(','));
    if (pageToken) form.append('page_token', pageToken);
    return api('/api/search', {method: 'POST', body: form});
  }

  async function loadPage() {
    if (state.loading || !state.query) return;
    const generation = state.generation;
    const query = state.query;
    state.loading = true;
    $('more').disabled = true;
    let page;
    try {
      page = await requestPage(query, state.nextPageToken);
    } catch (e) {
      if (generation !== state.generation) return;
      state.loading = false;
      $('more').disabled = false;
      // no retry on scroll after a failure: the "load more" button retries
      state.paused = true;
      $('more').hidden = !state.nextPageToken;
      reportSearchError(e, query);
      return;
    }
    if (generation !== state.generation) return;  // a newer query started meanwhile
    state.loading = false;
    $('more').disabled = false;
    const results = Array.isArray(page && page.results) ? page.results : [];
    const info = page && page.page_info ? page.page_info : {};
    state.nextPageToken = info.next_page_token || null;
    state.total = Number.isFinite(info.total) ? info.total : state.shown + results.length;
    renderResults(results);
    describe(page, query);
    $('more').hidden = !state.nextPageToken;
    // the sentinel may still be on screen (short pages): keep filling
    if (state.nextPageToken) requestAnimationFrame(() => maybeLoadMore());
  }

  function describe(page, query) {
    if (!state.shown) {
      const what = query.kind === 'text' ? `\u201c${query.text}\u201d` :
          query.kind === 'similar' ? `moments similar to ${query.label}` :
                                     'this clip';
      setStatus(`Nothing found for ${what}.`, 'empty');
      return;
    }
    const mods = Array.isArray(page.modalities) && page.modalities.length ?
        ' in ' + page.modalities.join(', ') :
        '';
    const took = Number.isFinite(page.took_ms) ? ` (${Math.round(page.took_ms)} ms)` : '';
    const head = query.kind === 'text' ? `for \u201c${query.text}\u201d` :
        query.kind === 'similar' ? `similar to ${query.label}` :
                                   `like ${query.file.name}`;
    const count = state.total > state.shown ? `${state.shown} of ${state.total}` : `${state.shown}`;
    setStatus(`${count} result${state.total === 1 ? '' : 's'} ${head}${mods}${took}`, 'ok');
  }

  function reportSearchError(e, query) {
    if (query.kind === 'clip' && (isMissing(e) || e.code === 'bad_json')) {
      setStatus('This server cannot search by an uploaded clip yet.', 'error');
    } else if (query.kind === 'similar' && e.code === 'no_vectors') {
      setStatus('Find similar needs vectors: this library was indexed without a model.', 'error');
    } else if (query.kind === 'similar' && isMissing(e)) {
      setStatus('This server cannot find similar moments.', 'error');
    } else if (e.code === 'bad_modality') {
      setStatus(e.message + ' \u2013 untick that kind of content and search again.', 'error');
    } else if (e.status === 401) {
      setStatus('This server needs an access token: open the UI as /?token=YOUR_TOKEN.', 'error');
    } else if (e.status === 413) {
      setStatus('The clip is larger than this server accepts.', 'error');
    } else {
      setStatus('Search failed: ' + e.message, 'error');
    }
  }

  function maybeLoadMore() {
    if (!state.nextPageToken || state.loading || state.paused) return;
    const r = $('sentinel').getBoundingClientRect();
    if (r.top < window.innerHeight + 600) loadPage();
  }

  // ---- results ---------------------------------------------------------------------------
  function thumbnailSegment(result) {
    const ids = Array.isArray(result.segment_ids) ? result.segment_ids : [];
    return ids.length ? ids[0] : null;
  }

  function renderResults(results) {
    // one fragment per page: one layout for fifty cards
    const fragment = document.createDocumentFragment();
    for (const r of results) {
      if (!r || !r.video) continue;
      fragment.append(resultCard(r));
      state.shown++;
    }
    $('results').append(fragment);
  }

  function resultCard(r) {
    const li = el('li', 'card');
    const title = r.video.title || r.video.path || `video ${r.video.id}`;
    const range = `${formatTime(r.start_ms)}\u2013${formatTime(r.end_ms)}`;
    li.dataset.videoId = r.video.id;
    li.dataset.startMs = r.start_ms;
    li.dataset.endMs = r.end_ms;
    li.dataset.rank = r.rank;

    const play = el('button', 'thumb');
    play.type = 'button';
    play.setAttribute('aria-label', `Play ${title} from ${formatTime(r.start_ms)}`);
    const segment = thumbnailSegment(r);
    if (segment !== null) {
      const img = document.createElement('img');
      img.loading = 'lazy';
      img.decoding = 'async';
      img.alt = '';
      img.width = 320;
      img.height = 180;
      img.addEventListener('error', () => play.classList.add('no-thumb'), {once: true});
      img.src = mediaUrl(`/api/segments/${encodeURIComponent(segment)}/thumbnail`);
      play.append(img);
    }
    play.append(el('span', 'range-badge', range));
    play.addEventListener('click', () => openPlayer(r));

    const body = el('div', 'card-body');
    const h = el('h3', 'card-title', title);
    h.title = r.video.path || title;
    const meta = el('p', 'card-meta');
    meta.append(el('span', 'rank', '#' + r.rank), ' ', el('span', 'time', range), ' ');
    const score = el('span', 'score', 'score ' + formatScore(r.score));
    if (r.scores && typeof r.scores === 'object') {
      score.title = Object.entries(r.scores).map(([k, v]) => `${k} ${formatScore(v)}`).join(', ');
    }
    meta.append(score);
    body.append(h, meta);
    const snip = snippetNode(r.match);
    if (snip) body.append(snip);

    const actions = el('div', 'card-actions');
    const playButton = el('button', 'play', 'Play');
    playButton.type = 'button';
    playButton.setAttribute('aria-label', `Play ${title} at ${range}`);
    playButton.addEventListener('click', () => openPlayer(r));
    actions.append(playButton);
    if (segment !== null) {
      const similar = el('button', 'similar', 'Find similar');
      similar.type = 'button';
      similar.setAttribute('aria-label', `Find moments similar to ${title} at ${range}`);
      similar.addEventListener('click', () => searchSimilar(segment, `${title} ${range}`));
      actions.append(similar);
    }
    body.append(actions);
    li.append(play, body);
    return li;
  }

  // ---- player ----------------------------------------------------------------------------
  function durationMs() {
    const video = $('video');
    if (Number.isFinite(video.duration) && video.duration > 0) return video.duration * 1000;
    const r = state.current;
    return r && r.video && r.video.duration_ms > 0 ? r.video.duration_ms : 0;
  }

  function drawTimeline() {
    const r = state.current;
    const total = durationMs();
    const video = $('video');
    const range = $('timeline-range'), cursor = $('timeline-cursor'), bar = $('timeline');
    if (!r || !total) {
      range.style.width = '0';
      cursor.style.left = '0';
      return;
    }
    const pct = (ms) => `${Math.min(100, Math.max(0, (ms / total) * 100))}%`;
    range.style.left = pct(r.start_ms);
    range.style.width = pct(Math.max(0, r.end_ms - r.start_ms));  // CSS keeps a minimum
    const m = r.match || {};
    const matchShown =
        Number.isFinite(m.start_ms) && Number.isFinite(m.end_ms) && m.end_ms > m.start_ms;
    const mark = $('timeline-match');
    mark.hidden = !matchShown;
    if (matchShown) {
      mark.style.left = pct(m.start_ms);
      mark.style.width = pct(m.end_ms - m.start_ms);
    }
    const now = (video.currentTime || 0) * 1000;
    cursor.style.left = pct(now);
    bar.setAttribute('aria-valuemax', String(Math.round(total / 1000)));
    bar.setAttribute('aria-valuenow', String(Math.round(now / 1000)));
    bar.setAttribute(
        'aria-valuetext',
        `${formatTime(now)} of ${formatTime(total)}; match ` +
            `${formatTime(r.start_ms)} to ${formatTime(r.end_ms)}`);
    $('player-time').textContent = `${formatTime(now)} / ${formatTime(total)} \u00b7 match ${
        formatTime(r.start_ms)}\u2013${formatTime(r.end_ms)}`;
  }

  function seekTo(ms) {
    const video = $('video');
    const target = Math.max(0, ms / 1000);
    // before metadata arrives currentTime cannot be set: loadedmetadata does it
    if (video.readyState >= 1)
      video.currentTime = target;
    else
      video.dataset.pendingSeek = String(target);
    drawTimeline();
  }

  function openPlayer(r) {
    state.current = r;
    const dialog = $('player');
    const video = $('video');
    $('player-title').textContent =
        `${r.video.title || r.video.path || 'video ' + r.video.id} \u00b7 ` +
        `${formatTime(r.start_ms)}\u2013${formatTime(r.end_ms)}`;
    $('player-message').textContent = '';
    $('player-similar').hidden = thumbnailSegment(r) === null;
    video.dataset.pendingSeek = String(Math.max(0, r.start_ms / 1000));
    video.dataset.startMs = String(r.start_ms);
    video.dataset.endMs = String(r.end_ms);
    video.src = mediaUrl(`/api/videos/${encodeURIComponent(r.video.id)}/stream`);
    video.load();
    if (!dialog.open) dialog.showModal();
    drawTimeline();
    $('player-close').focus();
  }

  function closePlayer() {
    const dialog = $('player');
    const video = $('video');
    video.pause();
    video.removeAttribute('src');
    video.load();  // drops the connection to the stream
    state.current = null;
    if (dialog.open) dialog.close();
  }

  function wirePlayer() {
    const video = $('video');
    video.addEventListener('loadedmetadata', () => {
      const pending = video.dataset.pendingSeek;
      delete video.dataset.pendingSeek;
      const play = () => {
        const played = video.play();
        if (played && played.catch) {
          played.catch(() => {
            $('player-message').textContent = 'Press play to start (the browser blocked autoplay).';
          });
        }
      };
      // play once the seek to the match is done, so playback starts exactly there
      if (pending !== undefined && Number(pending) > 0) {
        video.addEventListener('seeked', play, {once: true});
        video.currentTime = Number(pending);
      } else {
        play();
      }
      drawTimeline();
    });
    for (const ev of ['timeupdate', 'seeked', 'durationchange'])
      video.addEventListener(ev, drawTimeline);
    video.addEventListener('error', () => {
      if (!state.current) return;
      $('player-message').textContent =
          'This video cannot be played in this browser (its format or codec), or the file is gone.';
    });
    $('player-close').addEventListener('click', closePlayer);
    $('player').addEventListener('close', () => {
      if (state.current) closePlayer();
    });
    $('player').addEventListener('cancel', (e) => {  // Esc
      e.preventDefault();
      closePlayer();
    });
    $('player-jump').addEventListener('click', () => {
      if (state.current) seekTo(state.current.start_ms);
      video.play().catch(() => {});
    });
    $('player-similar').addEventListener('click', () => {
      const r = state.current;
      const seg = r && thumbnailSegment(r);
      if (seg === null || !r) return;
      const label = `${r.video.title || 'video ' + r.video.id} ${formatTime(r.start_ms)}\u2013${
          formatTime(r.end_ms)}`;
      closePlayer();
      searchSimilar(seg, label);
    });
    const bar = $('timeline');
    bar.addEventListener('click', (e) => {
      const rect = bar.getBoundingClientRect();
      const total = durationMs();
      if (!total || rect.width <= 0) return;
      seekTo(((e.clientX - rect.left) / rect.width) * total);
    });
    bar.addEventListener('keydown', (e) => {
      const step = e.shiftKey ? 10000 : 5000;
      const now = (video.currentTime || 0) * 1000;
      if (e.key === 'ArrowRight')
        seekTo(now + step);
      else if (e.key === 'ArrowLeft')
        seekTo(now - step);
      else if (e.key === 'Home' && state.current)
        seekTo(state.current.start_ms);
      else
        return;
      e.preventDefault();
    });
  }

  // ---- clip upload -----------------------------------------------------------------------
  function wireClip() {
    $('clip-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const file = $('clip-file').files[0];
      if (!file) {
        setStatus('Choose a video clip to search with.', 'error');
        return;
      }
      if (state.maxUploadBytes && file.size > state.maxUploadBytes) {
        setStatus(
            `The clip is ${(file.size / 1048576).toFixed(1)} MiB; this server takes at most ` +
                `${(state.maxUploadBytes / 1048576).toFixed(1)} MiB.`,
            'error');
        return;
      }
      const seconds = (id) => {
        const v = $(id).value.trim();
        return v === '' ? null : Math.round(Number(v) * 1000);
      };
      const startMs = seconds('clip-start'), endMs = seconds('clip-end');
      if ((startMs !== null && !(startMs >= 0)) || (endMs !== null && !(endMs >= 0)) ||
          (startMs !== null && endMs !== null && endMs <= startMs)) {
        setStatus('The clip\'s end must come after its start (seconds, 0 or more).', 'error');
        return;
      }
      const modalities = chosenModalities().filter((m) => m !== 'lexical');
      document.title = file.name + ' \u2013 vidx';
      startQuery({kind: 'clip', file, startMs, endMs, modalities});
    });
  }

  // ---- libraries and jobs ----------------------------------------------------------------
  function togglePanel(button, panel, onOpen) {
    button.addEventListener('click', () => {
      const open = panel.hidden;
      panel.hidden = !open;
      button.setAttribute('aria-expanded', String(open));
      if (open && onOpen) onOpen();
      if (!open && panel.id === 'libraries-panel') stopJobPolling();
    });
  }

  function libraryItem(lib, job, finished) {
    const li = el('li', 'library');
    li.dataset.library = lib.name;
    const head = el('div', 'library-head');
    head.append(el('h3', null, lib.name));
    const button = el('button', 'reindex', job ? 'Indexing\u2026' : 'Reindex');
    button.type = 'button';
    button.disabled = !!job;
    button.setAttribute('aria-label', `Reindex the library ${lib.name}`);
    button.addEventListener('click', () => reindex(lib.name, button));
    head.append(button);
    li.append(head);
    if (lib.root) li.append(el('p', 'library-root', lib.root));
    const v = lib.videos || {};
    const counts = el('p', 'library-counts');
    counts.textContent = `${v.indexed || 0} indexed \u00b7 ${v.pending || 0} pending \u00b7 ` +
        `${v.failed || 0} failed \u00b7 ${v.missing || 0} missing \u00b7 ` +
        `${lib.segments || 0} segments`;
    li.append(counts);
    const run = lib.last_run;
    if (run && typeof run === 'object' && !job && !finished) {
      const when =
          Number.isFinite(run.finished_ms) ? ' ' + new Date(run.finished_ms).toLocaleString() : '';
      li.append(el('p', 'library-last', `Last reindex: ${run.state || 'unknown'}${when}`));
    } else if (!job && !finished && lib.last_index_run && typeof lib.last_index_run === 'object') {
      // no job of this server yet: the catalog's record of the last indexing pass (vidx index)
      const r = lib.last_index_run;
      const when =
          Number.isFinite(r.finished_ms) ? ' ' + new Date(r.finished_ms).toLocaleString() : '';
      li.append(el('p', 'library-last', `Last indexed: ${r.status || 'unknown'}${when}`));
    }
    if (job) li.append(jobProgress(job));
    return li;
  }

  function jobProgress(job) {
    const box = el('div', 'job');
    box.dataset.state = job.state || '';
    box.dataset.job = job.id;
    const total = job.files_total || 0, done = job.files_done || 0;
    const bar = document.createElement('progress');
    bar.max = total || 1;
    bar.value = total ? done : 0;
    bar.setAttribute('aria-label', `Indexing ${job.library}`);
    const parts = [
      `${job.state || 'running'}`, `${done}/${total || '?'} files`,
      `${job.segments_done || 0} segments`
    ];
    if (job.videos_failed) parts.push(`${job.videos_failed} failed`);
    if (job.message) parts.push(job.message);
    box.append(bar, el('span', 'job-text', parts.join(' \u00b7 ')));
    return box;
  }

  const RUNNING = new Set(['queued', 'running']);

  async function loadLibraries() {
    const message = $('libraries-message');
    let libs, jobs = [];
    try {
      libs = await api('/api/libraries');
    } catch (e) {
      $('libraries').replaceChildren();
      message.textContent = isMissing(e) ? 'This server does not list libraries.' :
                                           'Could not load the libraries: ' + e.message;
      message.dataset.kind = 'error';
      stopJobPolling();
      return;
    }
    try {
      const j = await api('/api/jobs');
      jobs = Array.isArray(j && j.jobs) ? j.jobs : [];
    } catch (e) {
      jobs = [];
    }
    const list = Array.isArray(libs && libs.libraries) ? libs.libraries : [];
    // jobs come newest first; a job without a library reindexes them all
    const newest = (name, running) => jobs.find(
        (j) => j && (j.library === name || j.library === null) && RUNNING.has(j.state) === running);
    if (message.dataset.kind === 'error' || !list.length) {
      message.textContent = list.length ? '' : 'No library yet: index one with vidx index PATH.';
      message.dataset.kind = '';
    }
    let running = 0;
    $('libraries').replaceChildren(...list.map((lib) => {
      const active = newest(lib.name, true);
      const last = !active && newest(lib.name, false);
      const li = libraryItem(lib, active, last);
      if (active) running++;
      if (last) li.append(jobProgress(last));  // the outcome of the newest finished job
      return li;
    }));
    if (running) {
      scheduleJobPolling();
    } else {
      stopJobPolling();
      if (message.dataset.kind === 'job') {  // its outcome now shows on the library
        message.textContent = '';
        message.dataset.kind = '';
      }
    }
  }

  function scheduleJobPolling() {
    if (state.jobTimer) return;
    state.jobTimer = setTimeout(() => {
      state.jobTimer = 0;
      if (!$('libraries-panel').hidden) loadLibraries();
    }, JOB_POLL_MS);
  }

  function stopJobPolling() {
    if (state.jobTimer) clearTimeout(state.jobTimer);
    state.jobTimer = 0;
  }

  async function reindex(name, button) {
    const message = $('libraries-message');
    button.disabled = true;
    button.textContent = 'Starting\u2026';
    try {
      const answer = await api('/api/reindex', {
        method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({library: name}),
      });
      const id = answer && answer.job ? answer.job.id : null;
      message.textContent =
          `Reindexing ${name}` + (id !== null && id !== undefined ? ` (job ${id})` : '');
      message.dataset.kind = 'job';
    } catch (e) {
      button.disabled = false;
      button.textContent = 'Reindex';
      message.textContent = isMissing(e) ? 'This server cannot start a reindex.' :
          e.status === 409               ? `${name} is being indexed already.` :
                                           'Reindex failed: ' + e.message;
      message.dataset.kind = 'error-sticky';
      if (e.status !== 409) return;
    }
    stopJobPolling();
    loadLibraries();
  }

  // ---- start -----------------------------------------------------------------------------
  function fromLocation() {
    const p = new URLSearchParams(location.search);
    const q = p.get('q');
    const similar = p.get('similar');
    applyModalities(p.get('modalities'));
    if (q) {
      $('q').value = q;
      searchText(q, false);
    } else if (similar && /^\d+$/.test(similar)) {
      searchSimilar(Number(similar), null, false);
    } else {
      state.generation++;
      state.query = null;
      $('results').replaceChildren();
      $('more').hidden = true;
      if (state.unauthorized) {
        setStatus(
            token ? 'The access token in this page\'s address is not accepted.' :
                    'This server needs an access token: open the UI as /?token=YOUR_TOKEN.',
            'error');
        return;
      }
      setStatus(
          state.info && !state.info.model ?
              'Search words spoken, subtitled or written on screen (no model: words only).' :
              'Search your videos.',
          'info');
    }
  }

  async function main() {
    $('search-form').addEventListener('submit', (e) => {
      e.preventDefault();
      searchText($('q').value);
    });
    $('more').addEventListener('click', () => {
      state.paused = false;
      loadPage();
    });
    if ('IntersectionObserver' in window) {
      new IntersectionObserver((entries) => {
        if (entries.some((x) => x.isIntersecting)) maybeLoadMore();
      }, {rootMargin: '600px'}).observe($('sentinel'));
    }
    window.addEventListener('popstate', () => {
      closePlayer();
      fromLocation();
    });
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && $('player').open) {
        e.preventDefault();
        closePlayer();
      } else if (e.key === '/' && document.activeElement === document.body) {
        e.preventDefault();
        $('q').focus();
      }
    });
    togglePanel($('clip-toggle'), $('clip-panel'));
    togglePanel($('libraries-toggle'), $('libraries-panel'), loadLibraries);
    $('home').addEventListener('click', (e) => {
      e.preventDefault();
      const url = new URL(location.href);
      url.search = token ? '?token=' + encodeURIComponent(token) : '';
      history.pushState(null, '', url);
      $('q').value = '';
      fromLocation();
    });
    wirePlayer();
    wireClip();
    buildModalities();
    await loadInfo();
    fromLocation();
    if (!$('q').value) $('q').focus();
  }

  if (document.readyState === 'loading')
    document.addEventListener('DOMContentLoaded', main);
  else
    main();
})();
