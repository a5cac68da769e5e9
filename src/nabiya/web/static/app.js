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
//   PANELS.NAME = {init(section, tools), songShown(song), presetChosen(preset), trained(job)}
// (every hook optional; tools: api, postJSON, watchJob, drawRoll, links, showError, state).
// The song analysis (nabiya.analyze) and new tunes from corpus models (nabiya.generate_tunes),
// at the end of this file, are two: each has its section, its entry here, its routes or job kinds.
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

function wholePercent(fraction) {
  // Ceilings as the CLI prints them: 92%, 57%; never 100% for what falls short of it.
  const rounded = Math.round(fraction * 100);
  return `${fraction < 1 && rounded === 100 ? 99 : rounded}%`;
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

function noteList(numbers) {
  if (numbers.length === 1) return `note ${numbers[0]}`;
  return `notes ${numbers.slice(0, -1).join(", ")} and ${numbers[numbers.length - 1]}`;
}

function capitalized(sentence) {
  return sentence ? sentence[0].toUpperCase() + sentence.slice(1) : sentence;
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

function chosenPreset() {
  return state.info.presets.find((item) => item.name === $("#preset").value);
}

function showPreset() {
  const preset = chosenPreset();
  $("#preset-description").textContent = preset ? preset.description : "";
  if (preset) for (const panel of activePanels()) panel.presetChosen?.(preset);
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
  state.training = { id: job.id, points: [], status: job.status, source: null, about: job.about || {} };
  // The notes a continuation starts from when none are typed: the trained song's first window.
  state.training.primer = state.song.codes.slice(0, (chosenPreset() || { window: 4 }).window).join(" ");
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
    status.textContent = `Trained ${summary.epochs} epochs in ${summary.train_seconds.toFixed(1)} s · ${accuracyWords(summary)}.`;
    const choice = summary.training_choice;
    if (choice && choice.chosen) {
      // A song beyond what one window per step learns: how it was trained instead, and why.
      status.append(document.createElement("br"), choice.reason);
    }
    progress.value = 1;
  } else if (job.status === "cancelled") {
    status.textContent = "Cancelled.";
  } else if (job.status === "failed") {
    status.textContent = "Training failed.";
    showError($("#train-error"), new Error(job.error));
  }
  drawLoss($("#loss-chart"), training.points, total);
  showSpikes(training.points);
  drawAccuracy($("#accuracy-chart"), training.points, total, training.about.expectation);
  showExpectation(job, training.about.expectation);
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

function accuracyWords(summary) {
  // As the CLI says it: a run that ends below a 100% it reached earlier says so plainly.
  const words = `training accuracy ${percent(summary.accuracy)}`;
  const perfect = summary.epochs_to_100_percent;
  if (!perfect) return words;
  if (summary.final_accuracy_below_earlier_100_percent) {
    return `${words}: below the 100% first reached at epoch ${perfect} (Adam stepped away from the perfect fit ` +
      "later; more or fewer epochs may end at 100%)";
  }
  return `${words} (first 100% at epoch ${perfect})`;
}

function showExpectation(job, expectation) {
  // What the preset can reach on this song by construction, said beside its accuracy once trained.
  const line = $("#train-expectation");
  line.hidden = !(expectation && job.status === "done");
  if (line.hidden) return;
  line.replaceChildren(capitalized(expectation.summary) + ".");
  const panel = $("#analysis");
  if (panel && !panel.hidden) {
    const link = document.createElement("a");
    link.href = "#analysis";
    link.textContent = "Why?";
    line.append(" ", link);
  }
}

function countSpikes(losses) {
  // Adam's spikes, counted as nabiya.plots.count_spikes counts them (the rule comes from /api/info).
  const { factor, floor } = state.info.adam_spikes;
  let lowest = Infinity, above = false, count = 0;
  for (const loss of losses) {
    const now = loss > factor * lowest && lowest < floor;
    if (now && !above) count += 1;
    above = now;
    lowest = Math.min(lowest, loss);
  }
  return count;
}

function showSpikes(points) {
  const note = $("#spike-note");
  const spikes = countSpikes(points.map((point) => point[1]));
  note.hidden = spikes === 0;
  note.textContent = spikes ? state.info.adam_spikes.note : "";
  $("#loss-chart").dataset.spikes = String(spikes);
}

function drawAccuracy(svg, points, totalEpochs, expectation) {
  // Training accuracy (0-100%) against epoch, with the most a window alone can reach dashed.
  const width = 640, height = 170, left = 60, right = 12, top = 10, bottom = 30;
  svg.replaceChildren();
  const total = Math.max(totalEpochs || 1, 1);
  const x = (epoch) => left + ((width - left - right) * epoch) / total;
  const y = (fraction) => top + (height - top - bottom) * (1 - fraction);
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    line(svg, left, y(tick), width - right, y(tick), "grid");
    text(svg, left - 6, y(tick) + 4, `${tick * 100}%`, "end");
  }
  line(svg, left, height - bottom, width - right, height - bottom, "axis");
  line(svg, left, top, left, height - bottom, "axis");
  text(svg, left, height - 10, "1", "middle");
  text(svg, width - right, height - 10, String(total), "end");
  text(svg, (left + width) / 2, height - 10, "epoch", "middle");
  const caption = $("#ceiling-caption");
  caption.textContent = "";
  delete svg.dataset.ceiling;
  if (expectation && expectation.best_matches < expectation.samples) {
    const ceiling = expectation.best_matches / expectation.samples;
    line(svg, left, y(ceiling), width - right, y(ceiling), "ceiling");
    // A stateless model's curve stays under the line, a stateful one's goes over it: the label goes
    // where the curve is not.
    const words = expectation.stateful ? "a window alone could reach" : "the most this window can reach";
    const labelY = expectation.stateful ? y(ceiling) + 15 : y(ceiling) - 5;
    text(svg, width - right - 4, labelY, `${wholePercent(ceiling)}: ${words}`, "end").classList.add("ceiling-label");
    caption.textContent =
      ` · dashed: the most a model that sees only ${expectation.window} notes can get right on this song`;
    svg.dataset.ceiling = String(ceiling);
  }
  const shown = points.filter((point) => Number.isFinite(point[2]));
  if (shown.length) {
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("class", "curve");
    path.setAttribute("d", shown.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[2]).toFixed(1)}`).join(""));
    svg.append(path);
  }
  svg.dataset.points = String(shown.length);
}

function drawLoss(svg, points, totalEpochs) {
  const width = 640, height = 240, left = 60, right = 12, top = 12, bottom = 30;
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
  return element;
}

// --- 3. what it learned --------------------------------------------------------------------------

function showResults(job) {
  const result = job.result;
  const summary = result.summary;
  $("#result-summary").textContent =
    `${summary.preset} on ${result.song.title || "the melody"} · ${summary.epochs} epochs · seed ${summary.seed} · ` +
    accuracyWords(summary);
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
    showRemark($(".remark", box), which, prediction, (job.about || {}).expectation);
    $("img", box).src = jobFile(job.id, `${which}.svg`);
    $("audio", box).src = jobFile(job.id, `${which}.wav`);
    drawRoll($(".roll", box), prediction.roll);
  }
  showRunDownloads(job);
  $("#results").hidden = false;
  state.model = job.id;
  $("#primer").placeholder = state.training.primer;
  $("#generate").hidden = false;
  $("#generate-button").disabled = false;
  for (const panel of activePanels()) panel.trained?.(job);
}

function showRemark(element, which, prediction, expectation) {
  // Where the wrong notes are, against the places a window of the model's size cannot tell apart.
  const wrong = prediction.wrong_notes;
  element.hidden = !(expectation && expectation.ambiguous_notes.length && wrong.length);
  if (element.hidden) return;
  const places = new Set(expectation.ambiguous_notes);
  const window = `${expectation.window} notes`;
  if (which === "one_step") {
    const there = wrong.filter((note) => places.has(note)).length;
    if (there === 0) {
      element.textContent = `None of the wrong notes follows ${window} that the song continues in more than one ` +
        "way: more training may get them right.";
      return;
    }
    const subject = wrong.length === 1 ? "The wrong note follows"
      : there === wrong.length ? `All ${wrong.length} wrong notes follow`
      : `${there} of the ${wrong.length} wrong notes ${there === 1 ? "follows" : "follow"}`;
    element.textContent = `${subject} ${window} that the song continues in more than one way: ` +
      (expectation.stateful ? "there only what the model remembers from before its window tells the places apart."
        : "no model that sees only those notes can tell such places apart.");
  } else {
    const first = wrong[0];
    element.textContent = places.has(first)
      ? `The first wrong note, note ${first}, follows ${window} that the song continues in more than one way; ` +
        "after it, the model goes on from its own mistakes."
      : `The first wrong note is note ${first}; after it, the model goes on from its own mistakes.`;
  }
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
      panel.init?.(section, { api, postJSON, watchJob, drawRoll, links, showError, state });
    }
  }
}

// --- the song analysis (an optional panel: nabiya.analyze) ---------------------------------------

PANELS.analysis = (() => {
  // Why a window of notes is not always enough: the ceiling a window-only model can reach,
  // the ambiguous windows marked on the score, the memory a stateful model needs, and the
  // ceiling against the window size. Follows the song shown and the chosen model's window.
  let song = null;
  let window = 4; // the window shown
  let mark = 0; // 0: every ambiguous window marked; k: only the k-th (1-based)
  let facts = null;
  let asked = 0; // answers to older questions are dropped

  function init() {
    $("#analysis-window").addEventListener("change", (event) => choose(Number(event.target.value)));
    const preset = chosenPreset();
    if (preset) window = preset.window;
  }

  function songShown(shown) {
    song = shown;
    mark = 0;
    load();
  }

  function presetChosen(preset) {
    if (preset.window !== window) choose(preset.window);
  }

  function choose(size) {
    window = size;
    mark = 0;
    load();
  }

  async function load() {
    if (!song) return;
    const question = ++asked;
    const section = $("#analysis");
    section.dataset.state = "loading";
    try {
      const answer = await api(`/api/songs/${song.id}/analysis?window=${window}`);
      if (question !== asked) return;
      facts = answer;
      showError($("#analysis-error"), null);
      show();
      section.dataset.state = "shown";
    } catch (error) {
      if (question !== asked) return;
      facts = null;
      showError($("#analysis-error"), error);
      $("#analysis-view").hidden = true;
      $("#analysis-lead").textContent = "";
      // Offer the window sizes this song has (a window needs a note after it), if any.
      const sizes = Array.from({ length: Math.min(song.notes - 1, 16) }, (_, index) => index + 1);
      fillWindows(sizes.map((size) => [size, ""]));
      section.dataset.state = "failed";
    }
  }

  function fillWindows(rows) {
    // rows: [size, words after it]; the chosen window stays chosen when the song has it.
    const select = $("#analysis-window");
    select.replaceChildren(...rows.map(([size, words]) => new Option(`${plural(size, "note")}${words}`, String(size))));
    if (!rows.some(([size]) => size === window)) {
      const missing = new Option(`${plural(window, "note")}: more than this song has`, String(window));
      missing.disabled = true;
      select.prepend(missing);
    }
    select.value = String(window);
    select.closest(".inline-field").hidden = rows.length === 0;
  }

  function show() {
    const at = facts.at;
    const title = facts.title || "this melody";
    $("#analysis-view").hidden = false;
    fillWindows(facts.curve.map((row) => [row.window, ` · at most ${wholePercent(row.ceiling)}`]));

    const count = at.ambiguous.length;
    $("#analysis-lead").textContent = count
      ? `A model that sees only the last ${plural(window, "note")} gives one answer for each window of ` +
        `${plural(window, "note")}. In ${title}, ${count} ${count === 1 ? "window is" : "windows are"} followed by ` +
        `different notes in different places (${at.ambiguous_places} places), so the best such a model can do is ` +
        `${at.best_matches} of ${at.samples} notes: ${wholePercent(at.ceiling)}. ` +
        "A model that remembers what came before its window can do better."
      : `Every window of ${plural(window, "note")} in ${title} is always followed by the same note, so a model ` +
        `that sees only ${plural(window, "note")} can get all ${at.samples} right.`;

    tiles(at);
    score();
    windows(at);
    $("#analysis-memory").textContent = capitalized(facts.memory);
    drawCeiling($("#ceiling-chart"), facts.curve, window, facts.unique_window, choose);
    presets();
  }

  function tiles(at) {
    const list = $("#analysis-tiles");
    list.replaceChildren();
    const tile = (value, words) => {
      const box = document.createElement("div");
      const term = document.createElement("dt");
      term.textContent = value;
      const description = document.createElement("dd");
      description.textContent = words;
      box.append(term, description);
      list.append(box);
    };
    tile(wholePercent(at.ceiling), `the most a ${window}-note window can get right: ${at.best_matches} of ${at.samples} notes`);
    tile(String(at.ambiguous.length),
      `${at.ambiguous.length === 1 ? "window" : "windows"} of ${plural(window, "note")} followed by different ` +
      `notes, at ${plural(at.ambiguous_places, "place")}`);
    tile(plural(facts.unique_window, "note"), "the smallest window after which every next note is certain");
    tile(plural(facts.memory_notes, "note"), at.carried_notes
      ? `how far back a stateful model must remember: ${at.carried_notes} before its ${window}-note window`
      : `how far back a model must see: a ${window}-note window holds it all`);
  }

  function score() {
    const image = $("#analysis-score");
    image.src = facts.score + (mark ? `&mark=${mark}` : "");
    image.dataset.window = String(window);
    image.dataset.mark = String(mark);
  }

  function windows(at) {
    const list = $("#analysis-windows");
    list.replaceChildren();
    $("#analysis-marks").hidden = at.ambiguous.length === 0;
    at.ambiguous.slice(0, facts.legend_rows).forEach((entry, index) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "window";
      button.setAttribute("aria-pressed", String(mark === index + 1));
      const swatch = document.createElement("span");
      swatch.className = "pair";
      swatch.setAttribute("aria-hidden", "true");
      for (const color of [entry.pale, entry.pale, entry.color]) {
        const dot = document.createElement("span");
        dot.className = "swatch";
        dot.style.backgroundColor = color; // CSSOM: allowed by the page's content security policy
        swatch.append(dot);
      }
      const codes = document.createElement("span");
      codes.className = "codes";
      codes.textContent = entry.window.join(" ");
      const next = {};
      entry.continuations.forEach((code, place) => (next[code] ||= []).push(entry.notes[place]));
      const followers = Object.entries(next).map(([code, numbers]) => `${code} (${noteList(numbers)})`).join(" · ");
      const best = document.createElement("span");
      best.className = "hint";
      best.textContent = ` at best ${entry.best} of ${entry.notes.length} right`;
      button.append(swatch, codes, ` → ${followers}`, best);
      button.addEventListener("click", () => {
        mark = mark === index + 1 ? 0 : index + 1;
        for (const other of $$("#analysis-windows button")) other.setAttribute("aria-pressed", "false");
        button.setAttribute("aria-pressed", String(mark !== 0));
        score();
      });
      const item = document.createElement("li");
      item.append(button);
      list.append(item);
    });
    const more = at.ambiguous.length - facts.legend_rows;
    if (more > 0) {
      const item = document.createElement("li");
      item.className = "hint";
      item.textContent = `… and ${more} more, marked in the same colours (they repeat)`;
      list.append(item);
    }
  }

  function presets() {
    // The tutorial's models on this song, each at its own window, grouped by what they can reach.
    const groups = new Map();
    for (const [name, verdict] of Object.entries(facts.presets)) {
      let words;
      if (verdict.verdict === "ceiling") words = `at most ${wholePercent(verdict.ceiling)}: it sees only its ${verdict.window}-note window`;
      else if (verdict.verdict === "window") words = `100% possible: its ${verdict.window}-note window tells every place apart`;
      else {
        words = `its carried state must hold ${plural(verdict.carried_notes, "note")} from before its ` +
          `${verdict.window}-note window: ` + (verdict.expected_to_suffice ? "expected to reach 100%"
            : "more than its one-window training was measured to learn; not expected to reach 100%");
      }
      groups.set(words, [...(groups.get(words) || []), name]);
    }
    const list = $("#analysis-presets");
    list.replaceChildren();
    for (const [words, names] of groups) {
      const item = document.createElement("li");
      const strong = document.createElement("strong");
      strong.textContent = names.join(", ");
      item.append(strong, `: ${words}`);
      list.append(item);
    }
  }

  return { init, songShown, presetChosen };
})();

// --- new tunes from a corpus model (an optional panel: nabiya.generate_tunes) -------------------

PANELS.tunes = (() => {
  // Whole new tunes from a model trained on a corpus: one the server offers (nabiya serve
  // --models DIR) or one uploaded (a worker reads it with the safe reader first). Each tune
  // shows as sheet music, plays, shows its ABC, and downloads in every format.
  const TUNE_FORMATS = ["abc", "mid", "musicxml", "wav", "svg"];
  const models = new Map(); // value of the select -> the model's facts
  let job = null; // the tunes job shown
  let source = null; // its event stream

  function init() {
    for (const facts of state.info.corpus_models) models.set(facts.name, facts);
    $("#tunes-count").max = String(state.info.max_tunes);
    $("#tunes-length").max = String(state.info.max_tune_tokens);
    fillModels();
    $("#tunes-model").addEventListener("change", showModel);
    $("#tunes-meter").addEventListener("change", showKeys);
    $("#tunes-upload").addEventListener("change", upload);
    $("#tunes-strategy").addEventListener("change", showOptions);
    $("#tunes-form").addEventListener("submit", make);
    $("#tunes-cancel").addEventListener("click", cancel);
    showOptions();
    showModel();
  }

  function fillModels(chosen) {
    const select = $("#tunes-model");
    const options = [...models.entries()].map(([value, facts]) => new Option(facts.label || facts.name, value));
    if (!options.length) {
      const none = new Option("none yet: upload one", "");
      none.disabled = true;
      options.push(none);
    }
    select.replaceChildren(...options);
    if (chosen) select.value = chosen;
  }

  function choices(select, values) {
    const previous = select.value;
    select.replaceChildren(new Option("from the corpus", ""), ...values.map((value) => new Option(value, value)));
    if (values.includes(previous)) select.value = previous;
  }

  function showModel() {
    const facts = models.get($("#tunes-model").value);
    choices($("#tunes-meter"), facts ? facts.meters : []);
    showKeys();
    const words = [];
    if (facts) {
      words.push(facts.preset);
      if (facts.step !== undefined) words.push(`${facts.step} training steps`);
      if (facts.valid_nll !== undefined) words.push(`validation NLL ${facts.valid_nll.toFixed(2)} nats per note`);
      words.push(`${plural(facts.meters.length, "meter")}, ${plural(facts.keys.length, "key")}`);
    }
    $("#tunes-model-facts").textContent = words.join(" · ");
    $("#tunes-button").disabled = !facts || busy();
  }

  function showKeys() {
    // The keys whose mode the model's training tunes have in the meter chosen (all, for 'from the corpus').
    const facts = models.get($("#tunes-model").value);
    const meter = $("#tunes-meter").value;
    const modes = facts && meter && facts.modes ? facts.modes[meter] || [] : null;
    const fits = (key) => modes === null || modes.includes(key.split(" ").slice(1).join(" "));
    choices($("#tunes-key"), facts ? facts.keys.filter(fits) : []);
  }

  function showOptions() {
    const strategy = $("#tunes-strategy").value;
    for (const field of $$("#tunes-form [data-uses]")) field.hidden = !field.dataset.uses.split(" ").includes(strategy);
  }

  const busy = () => job !== null && !FINISHED.includes(job.status);

  async function upload() {
    const file = $("#tunes-upload").files[0];
    if (!file) return;
    const error = $("#tunes-error");
    showError(error, null);
    if (file.size > state.info.max_model_upload_bytes) {
      const megabytes = Math.round(state.info.max_model_upload_bytes / 1e6);
      showError(error, new Error(`${file.name}: the file is larger than ${megabytes} MB, the most the playground reads`));
      return;
    }
    const status = $("#tunes-status");
    status.textContent = `Reading ${file.name}…`;
    let started;
    try {
      started = await api(`/api/models/upload?${new URLSearchParams({ name: file.name })}`, {
        method: "POST",
        headers: { "content-type": "application/octet-stream" },
        body: file,
      });
    } catch (problem) {
      status.textContent = "";
      showError(error, problem);
      return;
    }
    watchJob(started.id, (current) => {
      if (current.status === "done") {
        const facts = { ...current.result, label: `${current.result.name} (uploaded)` };
        models.set(current.id, facts);
        fillModels(current.id);
        showModel();
        status.textContent = `${file.name} is ready.`;
      } else if (current.status === "failed") {
        status.textContent = "";
        showError(error, new Error(current.error));
      }
    });
  }

  function request() {
    const body = {
      kind: "tunes",
      model: $("#tunes-model").value,
      meter: $("#tunes-meter").value || undefined,
      key: $("#tunes-key").value || undefined,
      count: numberField($("#tunes-count")),
      strategy: $("#tunes-strategy").value,
      length: numberField($("#tunes-length")),
      seed: numberField($("#tunes-seed")),
    };
    for (const field of $$("#tunes-form [data-uses]")) {
      if (!field.hidden) {
        const input = $("input", field);
        body[input.name] = numberField(input);
      }
    }
    return body;
  }

  async function make(event) {
    event.preventDefault();
    showError($("#tunes-error"), null);
    const button = $("#tunes-button");
    button.disabled = true;
    let started;
    try {
      started = await postJSON("/api/jobs", request());
    } catch (error) {
      showError($("#tunes-error"), error);
      button.disabled = false;
      return;
    }
    if (source) source.close();
    job = started;
    $("#tunes-status").dataset.statuses = "";
    $("#tunes-cancel").hidden = false;
    update(started);
    source = watchJob(started.id, update);
  }

  function update(current) {
    if (!job || current.id !== job.id) return;
    job = current;
    const status = $("#tunes-status");
    remember(status, current.status);
    if (current.status === "queued") {
      status.textContent = current.position === 0 ? "Waiting: yours runs next."
        : `Waiting: ${current.position} ${current.position === 1 ? "job" : "jobs"} ahead of yours.`;
    } else if (current.status === "running") status.textContent = "Composing (the first tunes of a model compile)…";
    else if (current.status === "cancelled") status.textContent = "Cancelled.";
    else if (current.status === "failed") {
      status.textContent = "";
      showError($("#tunes-error"), new Error(current.error));
    } else status.textContent = "";
    if (current.status === "done") show(current);
    if (FINISHED.includes(current.status)) {
      $("#tunes-cancel").hidden = true;
      showModel();
    }
  }

  async function cancel() {
    if (!job) return;
    try {
      update(await api(`/api/jobs/${job.id}`, { method: "DELETE" }));
    } catch (error) {
      showError($("#tunes-error"), error);
    }
  }

  function show(done) {
    const result = done.result;
    $("#tunes-view").hidden = false;
    const total = result.tunes.length;
    const ended = result.tunes.filter((tune) => tune.ended).length;
    const endings = ended === total ? (total === 1 ? "it ended by itself" : "all ended by themselves")
      : ended === 0 ? `${total === 1 ? "it was" : "all were"} cut at the length limit`
      : `${ended} ended by ${ended === 1 ? "itself" : "themselves"}, ${total - ended} cut at the length limit`;
    $("#tunes-how").textContent = `${plural(total, "tune")} by ${result.model} (${result.how}): ${endings}.`;
    const list = $("#tunes-list");
    list.replaceChildren();
    for (const tune of result.tunes) {
      const article = document.createElement("article");
      article.className = "tune";
      article.dataset.stem = tune.stem;
      const heading = document.createElement("h3");
      const facts = document.createElement("span");
      facts.className = "facts";
      facts.textContent = [tune.meter, tune.key, `${tune.notes} notes`, tune.ended ? "ended by itself" : "cut at the limit"]
        .filter(Boolean).join(" · ");
      heading.append(tune.title, facts);
      const figure = document.createElement("figure");
      figure.className = "score";
      const image = document.createElement("img");
      image.alt = `${tune.title} as sheet music`;
      image.src = jobFile(done.id, `${tune.stem}.svg`);
      figure.append(image);
      const listen = document.createElement("div");
      listen.className = "listen";
      const label = document.createElement("span");
      label.textContent = "Listen";
      const audio = document.createElement("audio");
      audio.controls = true;
      audio.preload = "auto";
      audio.src = jobFile(done.id, `${tune.stem}.wav`);
      listen.append(label, " ", audio);
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = "ABC";
      const text = document.createElement("pre");
      text.className = "abc";
      text.textContent = tune.abc;
      details.append(summary, text);
      const downloads = document.createElement("p");
      downloads.className = "downloads";
      const names = TUNE_FORMATS.map((format) => `${tune.stem}.${format}`).filter((name) => done.files.includes(name));
      links(downloads, "Download:", names.map((name) => [name.split(".").pop(), jobFile(done.id, name, true)]));
      article.append(heading, figure, listen, details, downloads);
      list.append(article);
    }
    const all = $("#tunes-downloads");
    all.className = "downloads";
    links(all, "All tunes:", [["zip", `/api/jobs/${done.id}/files.zip`]]);
  }

  return { init };
})();

function drawCeiling(svg, curve, chosen, unique, choose) {
  // The most a window-only model can get right (%) against the window size; the chosen size marked.
  const width = 640, height = 220, left = 60, right = 20, top = 22, bottom = 36;
  svg.replaceChildren();
  const last = curve[curve.length - 1].window;
  const x = (size) => left + ((width - left - right) * (size - 1)) / Math.max(last - 1, 1);
  const lowest = Math.min(...curve.map((row) => row.ceiling * 100));
  const low = Math.max(0, Math.floor((lowest - 5) / 10) * 10);
  const y = (value) => top + ((height - top - bottom) * (100 - value)) / (100 - low);
  const step = 100 - low > 50 ? 20 : 10;
  for (let tick = low; tick <= 100; tick += step) {
    line(svg, left, y(tick), width - right, y(tick), tick === 100 ? "full" : "grid");
    text(svg, left - 6, y(tick) + 4, `${tick}%`, "end");
  }
  line(svg, left, height - bottom, width - right, height - bottom, "axis");
  line(svg, left, top, left, height - bottom, "axis");
  const every = last <= 20 ? 1 : Math.ceil(last / 10);
  for (const row of curve) {
    if ((row.window - 1) % every === 0 || row.window === last) text(svg, x(row.window), height - bottom + 15, String(row.window), "middle");
  }
  text(svg, (left + width) / 2, height - 4, "window: notes a model sees", "middle");
  if (chosen <= last) line(svg, x(chosen), top, x(chosen), height - bottom, "chosen");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("class", "curve");
  path.setAttribute("d", curve.map((row, i) => `${i ? "L" : "M"}${x(row.window).toFixed(1)},${y(row.ceiling * 100).toFixed(1)}`).join(""));
  svg.append(path);
  for (const row of curve) {
    const point = document.createElementNS(SVG_NS, "circle");
    point.setAttribute("cx", x(row.window).toFixed(1));
    point.setAttribute("cy", y(row.ceiling * 100).toFixed(1));
    point.setAttribute("r", row.window === chosen ? "6" : "4");
    point.setAttribute("class", row.window === chosen ? "point chosen" : "point");
    const tip = document.createElementNS(SVG_NS, "title");
    tip.textContent = `window ${row.window}: ${row.best_matches}/${row.samples} = ${wholePercent(row.ceiling)}`;
    point.append(tip);
    point.addEventListener("click", () => choose(row.window));
    svg.append(point);
  }
  const here = curve.find((row) => row.window === chosen);
  if (here) {
    const label = text(svg, x(chosen) + (chosen > last * 0.7 ? -10 : 10), y(here.ceiling * 100) + 18,
      `${here.best_matches}/${here.samples} = ${wholePercent(here.ceiling)}`, chosen > last * 0.7 ? "end" : "start");
    label.classList.add("chosen-label");
  }
  if (unique <= last && unique !== chosen) {
    const anchor = unique === last ? "end" : unique === 1 ? "start" : "middle";
    text(svg, x(unique), y(100) - 8, "every next note certain", anchor);
  }
  svg.dataset.windows = String(curve.length);
  svg.dataset.chosen = String(chosen);
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
  showPreset();

  await loadSong();
  document.body.dataset.ready = "true";
}

start();
