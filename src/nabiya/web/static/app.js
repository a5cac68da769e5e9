// nabiya playground: the page's behaviour. No framework, no build step: it talks to the JSON
// API of nabiya.web.app and draws the loss curve and the piano rolls as SVG.

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
const SVG_NS = "http://www.w3.org/2000/svg";
const SONG_FORMATS = ["svg", "wav", "mid", "abc", "musicxml", "txt"];
const FINISHED = ["done", "failed", "cancelled"];
const NOTE_NAMES = ["C", "C♯", "D", "E♭", "E", "F", "F♯", "G", "A♭", "A", "B♭", "B"];

const state = {
  info: null,
  song: null, // the song shown: the facts /api/songs gave
  training: null, // {id, points, source}
  model: null, // the id of the finished training job whose model generates
  generating: null,
};

// Optional panels. A section of index.html with data-feature="NAME" shows when /api/info's
// "features" says the Python API has what feeds it and a panel of that name is here:
//   PANELS.NAME = {init(section, api), songShown(song), trained(job)}  (all optional)
// The song analysis (nabiya.analyze) is the first planned; none is built yet.
const PANELS = {};

// --- talking to the server ---------------------------------------------------------------------

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: fall back on the status line
  }
  if (!response.ok) throw new Error(body && body.error ? body.error : `${response.status} ${response.statusText}`);
  return body;
}

function postJSON(path, data) {
  return api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(data) });
}

function watchJob(id, onState) {
  // The server sends the whole state first, then what changed; EventSource reconnects by itself
  // and the server then starts again from the whole state.
  const source = new EventSource(`/api/jobs/${id}/events`);
  source.addEventListener("state", (message) => {
    const job = JSON.parse(message.data);
    onState(job);
    if (FINISHED.includes(job.status)) source.close();
  });
  return source;
}

const songFile = (id, format, download) => `/api/songs/${id}.${format}${download ? "?download" : ""}`;
const jobFile = (id, name, download) =>
  `/api/jobs/${id}/files/${encodeURIComponent(name)}${download ? "?download" : ""}`;

function showError(element, error) {
  element.textContent = error ? error.message || String(error) : "";
  element.hidden = !error;
}

function numberField(input) {
  const value = input.value.trim();
  if (value === "") return undefined;
  const number = Number(value);
  return Number.isFinite(number) ? number : value; // the server names what is wrong with text
}

function percent(fraction) {
  return `${Math.round(fraction * 1000) / 10}%`;
}

function links(container, label, items) {
  container.replaceChildren();
  const caption = document.createElement("span");
  caption.className = "label";
  caption.textContent = label;
  container.append(caption);
  for (const [text, href] of items) {
    const link = document.createElement("a");
    link.href = href;
    link.textContent = text;
    link.setAttribute("download", "");
    container.append(link);
  }
}

function remember(element, status) {
  // The statuses a job went through, in order, for a person reading the DOM (and the tests).
  const seen = (element.dataset.statuses || "").split(" ").filter(Boolean);
  if (seen[seen.length - 1] !== status) seen.push(status);
  element.dataset.statuses = seen.join(" ");
}

// --- 1. the melody -------------------------------------------------------------------------------

function currentSource() {
  return $("input[name=source]:checked").value;
}

function showSource() {
  const source = currentSource();
  for (const panel of $$(".source[data-source]")) panel.hidden = panel.dataset.source !== source;
  $("#tune-choice").hidden = true;
  showError($("#song-error"), null);
}

async function readSong(tune) {
  const source = currentSource();
  if (source === "builtin") return postJSON("/api/songs", { builtin: $("#builtin-song").value });
  if (source === "codes") return postJSON("/api/songs", { codes: $("#codes-text").value });
  if (source === "abc") return postJSON("/api/songs", { abc: $("#abc-text").value, tune });
  const file = $("#song-file").files[0];
  if (!file) throw new Error("choose a file first");
  if (file.size > state.info.max_upload_bytes) {
    const megabytes = (state.info.max_upload_bytes / 1e6).toFixed(1);
    throw new Error(`${file.name}: the file is larger than ${megabytes} MB, the most the playground reads`);
  }
  const query = new URLSearchParams({ name: file.name });
  if (tune) query.set("tune", tune);
  return api(`/api/songs/upload?${query}`, {
    method: "POST",
    headers: { "content-type": "application/octet-stream" },
    body: file,
  });
}

async function loadSong(tune) {
  const button = $("#show-song");
  button.disabled = true;
  try {
    const song = await readSong(tune);
    showError($("#song-error"), null);
    showSong(song, tune);
  } catch (error) {
    showError($("#song-error"), error);
  } finally {
    button.disabled = false;
  }
}

function showSong(song, tune) {
  state.song = song;
  $("#song-view").hidden = false;
  $("#song-title").textContent = song.title || "Untitled melody";
  const facts = [`${song.notes} notes`, `${song.tokens} different notes`];
  if (song.meter) facts.push(song.meter);
  if (song.key) facts.push(song.key);
  facts.push(`${Math.round(song.tempo_bpm)} bpm`);
  $("#song-facts").textContent = facts.join(" · ");
  const warnings = $("#song-warnings");
  warnings.textContent = (song.warnings || []).join(" ");
  warnings.hidden = !(song.warnings || []).length;
  $("#song-score").src = songFile(song.id, "svg");
  $("#song-audio").src = songFile(song.id, "wav");
  links($("#song-downloads"), "Download:", SONG_FORMATS.map((format) => [format, songFile(song.id, format, true)]));
  const tunes = song.tunes || [];
  const choice = $("#tune-choice");
  choice.hidden = tunes.length < 2;
  if (tunes.length > 1) {
    const select = $("#tune");
    select.replaceChildren(
      ...tunes.map((item) => new Option(`X:${item.reference} ${item.title}`.trim(), item.reference)),
    );
    select.value = tune || tunes[0].reference;
  }
  $("#edit-song").hidden = false;
  $("#train-button").disabled = state.training !== null && !FINISHED.includes(state.training.status);
  for (const panel of activePanels()) panel.songShown?.(song);
}

function editAsCodes() {
  $("#codes-text").value = state.song.text;
  $("input[name=source][value=codes]").checked = true;
  showSource();
  $("#codes-text").focus();
}

// --- 2. training ---------------------------------------------------------------------------------

function showPreset() {
  const preset = state.info.presets.find((item) => item.name === $("#preset").value);
  $("#preset-description").textContent = preset ? preset.description : "";
}

async function train(event) {
  event.preventDefault();
  if (!state.song) return;
  const body = {
    kind: "train",
    song: state.song.text,
    preset: $("#preset").value,
    epochs: numberField($("#epochs")),
    seed: numberField($("#seed")),
  };
  showError($("#train-error"), null);
  let job;
  try {
    job = await postJSON("/api/jobs", body);
  } catch (error) {
    showError($("#train-error"), error);
    return;
  }
  if (state.training && state.training.source) state.training.source.close();
  state.training = { id: job.id, points: [], status: job.status, source: null };
  $("#results").hidden = true;
  $("#train-view").hidden = false;
  $("#train-view").dataset.statuses = "";
  $("#train-button").disabled = true;
  $("#cancel-button").hidden = false;
  const chart = $("#loss-chart");
  chart.dataset.updates = "0";
  updateTraining(job);
  state.training.source = watchJob(job.id, updateTraining);
}

function updateTraining(job) {
  const training = state.training;
  if (!training || training.id !== job.id) return;
  training.status = job.status;
  training.points.splice(job.since, Infinity, ...job.progress);
  remember($("#train-view"), job.status);
  const total = job.epochs_total;
  const last = training.points[training.points.length - 1];
  const status = $("#job-status");
  const progress = $("#train-progress");
  if (job.status === "queued") {
    status.textContent =
      job.position === 0
        ? `Waiting: yours runs next (${job.running} of ${job.workers} running now).`
        : `Waiting: ${job.position} ${job.position === 1 ? "job" : "jobs"} ahead of yours.`;
    progress.removeAttribute("value");
  } else if (job.status === "running") {
    status.textContent = last
      ? `Training: epoch ${last[0]} of ${total} · loss ${last[1].toPrecision(3)} · accuracy ${percent(last[2])}`
      : "Training: starting (the first epochs compile)…";
    progress.value = last ? last[0] / total : 0;
  } else if (job.status === "done") {
    const summary = job.result.summary;
    training.points = summary.loss_history.map((loss, index) => [index + 1, loss, summary.accuracy_history[index]]);
    status.textContent = `Trained ${summary.epochs} epochs in ${summary.train_seconds.toFixed(1)} s · training accuracy ${percent(summary.accuracy)}.`;
    progress.value = 1;
  } else if (job.status === "cancelled") {
    status.textContent = "Cancelled.";
  } else if (job.status === "failed") {
    status.textContent = "Training failed.";
    showError($("#train-error"), new Error(job.error));
  }
  drawLoss($("#loss-chart"), training.points, total);
  if (FINISHED.includes(job.status)) {
    $("#cancel-button").hidden = true;
    $("#train-button").disabled = !state.song;
  }
  if (job.status === "done") showResults(job);
}

async function cancelTraining() {
  if (!state.training) return;
  try {
    const job = await api(`/api/jobs/${state.training.id}`, { method: "DELETE" });
    updateTraining(job);
  } catch (error) {
    showError($("#train-error"), error);
  }
}

function drawLoss(svg, points, totalEpochs) {
  const width = 640, height = 240, left = 52, right = 12, top = 12, bottom = 30;
  svg.replaceChildren();
  const shown = points.filter((point) => point[1] > 0 && Number.isFinite(point[1]));
  const total = Math.max(totalEpochs || 1, 1);
  const x = (epoch) => left + ((width - left - right) * epoch) / total;
  let low = 0, high = 1;
  if (shown.length) {
    low = Math.log10(Math.min(...shown.map((point) => point[1])));
    high = Math.log10(Math.max(...shown.map((point) => point[1])));
    if (high - low < 0.5) { low -= 0.25; high += 0.25; }
  }
  const y = (loss) => top + ((height - top - bottom) * (high - Math.log10(loss))) / (high - low);
  for (const tick of lossTicks(low, high)) {
    line(svg, left, y(tick), width - right, y(tick), "grid");
    text(svg, left - 6, y(tick) + 4, tick >= 0.01 ? String(Number(tick.toPrecision(1))) : tick.toExponential(0), "end");
  }
  line(svg, left, height - bottom, width - right, height - bottom, "axis");
  line(svg, left, top, left, height - bottom, "axis");
  text(svg, left, height - 10, "1", "middle");
  text(svg, width - right, height - 10, String(total), "end");
  text(svg, (left + width) / 2, height - 10, "epoch", "middle");
  if (shown.length) {
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("class", "curve");
    path.setAttribute("d", shown.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(""));
    svg.append(path);
  }
  svg.dataset.points = String(shown.length);
  svg.dataset.updates = String(Number(svg.dataset.updates || 0) + 1);
  svg.dataset.lastLoss = shown.length ? String(shown[shown.length - 1][1]) : "";
  svg.dataset.firstLoss = shown.length ? String(shown[0][1]) : "";
}

function lossTicks(low, high) {
  // Powers of ten between 10^low and 10^high; 2 and 5 times them too when that gives too few.
  for (const steps of [[1], [1, 2, 5], [1, 1.5, 2, 3, 5, 7]]) {
    const ticks = [];
    for (let decade = Math.floor(low); decade <= Math.ceil(high); decade++) {
      for (const step of steps) {
        const tick = step * 10 ** decade;
        if (Math.log10(tick) >= low && Math.log10(tick) <= high) ticks.push(tick);
      }
    }
    if (ticks.length >= 3) return ticks;
  }
  return [];
}

function line(svg, x1, y1, x2, y2, className) {
  const element = document.createElementNS(SVG_NS, "line");
  for (const [name, value] of Object.entries({ x1, y1, x2, y2 })) element.setAttribute(name, value.toFixed(1));
  element.setAttribute("class", className);
  svg.append(element);
}

function text(svg, x, y, content, anchor) {
  const element = document.createElementNS(SVG_NS, "text");
  element.setAttribute("x", x.toFixed(1));
  element.setAttribute("y", y.toFixed(1));
  element.setAttribute("text-anchor", anchor);
  element.textContent = content;
  svg.append(element);
}

// --- 3. what it learned --------------------------------------------------------------------------

function showResults(job) {
  const result = job.result;
  const summary = result.summary;
  const perfect = summary.epochs_to_100_percent ? ` (100% first at epoch ${summary.epochs_to_100_percent})` : "";
  $("#result-summary").textContent =
    `${summary.preset} on ${result.song.title || "the melody"} · ${summary.epochs} epochs · seed ${summary.seed} · ` +
    `training accuracy ${percent(summary.accuracy)}${perfect}`;
  for (const which of ["one_step", "full_song"]) {
    const prediction = result.predictions[which];
    const box = $(`#pred-${which}`);
    const verdict = $(".verdict", box);
    const right = prediction.matches === prediction.total;
    verdict.replaceChildren();
    const count = document.createElement("span");
    count.className = right ? "good" : "bad";
    count.textContent = `${prediction.matches}/${prediction.total} right`;
    verdict.append(count, ` · first mismatch: ${prediction.first_mismatch}`);
    $("img", box).src = jobFile(job.id, `${which}.svg`);
    $("audio", box).src = jobFile(job.id, `${which}.wav`);
    drawRoll($(".roll", box), prediction.roll);
  }
  showRunDownloads(job);
  $("#results").hidden = false;
  state.model = job.id;
  $("#generate").hidden = false;
  $("#generate-button").disabled = false;
  for (const panel of activePanels()) panel.trained?.(job);
}

const FILE_GROUPS = [
  ["the song", "song."],
  ["one step", "one_step."],
  ["full song", "full_song."],
  ["plots and summary", ""],
];

function showRunDownloads(job) {
  // One line per group: the model and everything; then each song's formats; then the rest.
  const container = $("#run-downloads");
  container.replaceChildren();
  const group = (label, items) => {
    const line = document.createElement("p");
    line.className = "downloads";
    links(line, label, items);
    container.append(line);
  };
  group("Download:", [
    ["model file", jobFile(job.id, "model.nabiya", true)],
    ["everything (zip)", `/api/jobs/${job.id}/files.zip`],
  ]);
  let rest = job.files.filter((name) => name !== "model.nabiya");
  for (const [label, prefix] of FILE_GROUPS) {
    const mine = rest.filter((name) => name.startsWith(prefix));
    rest = rest.filter((name) => !mine.includes(name));
    if (mine.length) group(`${label}:`, mine.map((name) => [prefix ? name.slice(prefix.length) : name, jobFile(job.id, name, true)]));
  }
}

function noteName(pitch) {
  return `${NOTE_NAMES[pitch % 12]}${Math.floor(pitch / 12) - 1}`;
}

function drawRoll(svg, roll) {
  // Pitch against time in quarter notes: the song as wide pale bars, the melody over them as
  // narrow bars (red where wrong, grey where given). Rests get a row below the lowest pitch.
  const unit = 24, row = 11, left = 40, top = 6;
  const everything = [...roll.truth, ...roll.notes];
  const pitches = everything.map((note) => note[2]).filter((pitch) => pitch !== null);
  const lowest = Math.min(...pitches, 60), highest = Math.max(...pitches, 60);
  const hasRests = everything.some((note) => note[2] === null);
  const restRow = lowest - 2;
  const bottomPitch = hasRests ? restRow : lowest;
  const end = Math.max(1, ...everything.map((note) => note[0] + note[1]));
  const width = left + end * unit + 10, height = top + (highest - bottomPitch + 1) * row + 8;
  const y = (pitch) => top + (highest - (pitch === null ? restRow : pitch)) * row;
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  if (roll.bar) {
    for (let time = roll.pickup || roll.bar; time < end; time += roll.bar) {
      line(svg, left + time * unit, top, left + time * unit, height - 6, "bar");
    }
  }
  for (let pitch = lowest; pitch <= highest; pitch++) {
    if (pitch % 12 === 0 || pitch === lowest || pitch === highest) text(svg, left - 6, y(pitch) + row - 1, noteName(pitch), "end");
  }
  if (hasRests) text(svg, left - 6, y(null) + row - 1, "rest", "end");
  const bar = (note, className, inset) => {
    const rect = document.createElementNS(SVG_NS, "rect");
    rect.setAttribute("x", (left + note[0] * unit + 0.5).toFixed(1));
    rect.setAttribute("width", Math.max(1, note[1] * unit - 1).toFixed(1));
    rect.setAttribute("y", (y(note[2]) + inset).toFixed(1));
    rect.setAttribute("height", (row - 2 * inset).toFixed(1));
    rect.setAttribute("rx", "1.5");
    rect.setAttribute("class", className);
    svg.append(rect);
  };
  for (const note of roll.truth) bar(note, "truth", 0.5);
  const inset = roll.truth.length ? 2.5 : 1;
  for (const note of roll.notes) bar(note, note[3] || (roll.truth.length ? "right" : "new"), inset);
  svg.dataset.wrong = String(roll.notes.filter((note) => note[3] === "wrong").length);
  svg.dataset.notes = String(roll.notes.length);
}

// --- 4. new music --------------------------------------------------------------------------------

function showStrategyOptions() {
  const strategy = $("#strategy").value;
  for (const field of $$("#generate-form [data-uses]")) field.hidden = !field.dataset.uses.split(" ").includes(strategy);
}

async function generate(event) {
  event.preventDefault();
  if (!state.model) return;
  const strategy = $("#strategy").value;
  const body = {
    kind: "generate",
    model: state.model,
    strategy,
    seed: numberField($("#gen-seed")),
    length: numberField($("#length")),
    primer: $("#primer").value.trim() || undefined,
  };
  for (const field of $$("#generate-form [data-uses]")) {
    if (!field.hidden) {
      const input = $("input", field);
      body[input.name] = numberField(input);
    }
  }
  showError($("#generate-error"), null);
  const button = $("#generate-button");
  button.disabled = true;
  let job;
  try {
    job = await postJSON("/api/jobs", body);
  } catch (error) {
    showError($("#generate-error"), error);
    button.disabled = false;
    return;
  }
  if (state.generating) state.generating.close();
  const status = $("#generate-status");
  status.dataset.statuses = "";
  const update = (current) => {
    remember(status, current.status);
    if (current.status === "queued") status.textContent = `Waiting: ${current.position} ${current.position === 1 ? "job" : "jobs"} ahead.`;
    else if (current.status === "running") status.textContent = "Composing…";
    else status.textContent = "";
    if (current.status === "failed") showError($("#generate-error"), new Error(current.error));
    if (current.status === "done") showGenerated(current);
    if (FINISHED.includes(current.status)) button.disabled = false;
  };
  update(job);
  state.generating = watchJob(job.id, update);
}

function showGenerated(job) {
  const result = job.result;
  $("#generated").hidden = false;
  $("#generated-title").textContent = result.title;
  const codes = $("#generated-codes");
  codes.replaceChildren();
  const given = document.createElement("span");
  given.className = "hint";
  given.textContent = result.codes.slice(0, result.primer).join(" ") + " ";
  codes.append(given, result.codes.slice(result.primer).join(" "));
  $("#generated-score").src = jobFile(job.id, "generated.svg");
  $("#generated-audio").src = jobFile(job.id, "generated.wav");
  drawRoll($("#generated-roll"), result.roll);
  links(
    $("#generated-downloads"),
    "Download:",
    job.files.map((name) => [name.replace("generated.", ""), jobFile(job.id, name, true)]),
  );
}

// --- optional panels -----------------------------------------------------------------------------

function activePanels() {
  return $$("section[data-feature]")
    .filter((section) => !section.hidden && PANELS[section.dataset.feature])
    .map((section) => PANELS[section.dataset.feature]);
}

function startPanels() {
  for (const section of $$("section[data-feature]")) {
    const name = section.dataset.feature;
    const panel = PANELS[name];
    if (panel && state.info.features[name]) {
      section.hidden = false;
      panel.init?.(section, { api, postJSON, watchJob, drawRoll, state });
    }
  }
}

// --- start ---------------------------------------------------------------------------------------

async function start() {
  try {
    state.info = await api("/api/info");
  } catch (error) {
    showError($("#song-error"), error);
    return;
  }
  const builtin = $("#builtin-song");
  builtin.replaceChildren(...state.info.songs.map((song) => new Option(song.title, song.name)));
  const preset = $("#preset");
  preset.replaceChildren(...state.info.presets.map((item) => new Option(item.name, item.name)));
  preset.value = "stateful2";
  $("#epochs").max = String(state.info.max_epochs);
  $("#length").max = String(state.info.max_generate_notes);
  showPreset();
  showStrategyOptions();

  for (const radio of $$("input[name=source]")) radio.addEventListener("change", showSource);
  $("#song-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadSong();
  });
  builtin.addEventListener("change", () => loadSong());
  $("#song-file").addEventListener("change", () => loadSong());
  $("#tune").addEventListener("change", (event) => loadSong(event.target.value));
  $("#edit-song").addEventListener("click", editAsCodes);
  preset.addEventListener("change", showPreset);
  $("#train-form").addEventListener("submit", train);
  $("#cancel-button").addEventListener("click", cancelTraining);
  $("#strategy").addEventListener("change", showStrategyOptions);
  $("#generate-form").addEventListener("submit", generate);
  startPanels();

  await loadSong();
  document.body.dataset.ready = "true";
}

start();
