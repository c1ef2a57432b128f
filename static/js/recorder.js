// Record an announcement in the browser: microphone -> mono PCM at 16 kHz -> a WAV file
// (16-bit PCM mono 16 kHz, a format the server accepts) -> a preview -> POST to the server,
// which checks it exactly like an uploaded file. No build step, no library.

const RATE = 16000;

// Runs on the audio thread: hands each block of the (mono) input to the page.
const CAPTURE_WORKLET = `
class Capture extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) this.port.postMessage(channel.slice(0));
    return true;
  }
}
registerProcessor("capture", Capture);
`;

const form = document.getElementById("recorder");
const configElement = document.getElementById("recorder-config");
if (form && configElement) setUp(form, JSON.parse(configElement.textContent));

function setUp(form, config) {
  const labels = config.labels;
  const recordButton = form.querySelector('[data-action="record"]');
  const stopButton = form.querySelector('[data-action="stop"]');
  const saveButton = form.querySelector('[data-action="save"]');
  const timer = form.querySelector(".timer");
  const preview = form.querySelector('[data-role="preview"]');
  const status = form.querySelector(".recorder-status");
  const nameInput = form.querySelector('input[name$="name"]');
  let session = null; // the recording in progress
  let recording = null; // the last finished recording, a WAV Blob not saved yet

  const say = (text, isError = false) => {
    status.textContent = text;
    status.classList.toggle("error", isError);
  };

  recordButton.addEventListener("click", async () => {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.AudioWorkletNode) {
      say(labels.noMicrophone, true);
      return;
    }
    recordButton.disabled = true;
    try {
      session = await startRecording(() => tick());
    } catch (error) {
      recordButton.disabled = false;
      say(labels.denied.replace("%s", error.message || error.name), true);
      return;
    }
    recording = null;
    preview.hidden = true;
    saveButton.disabled = true;
    stopButton.disabled = false;
    say(labels.recording);
    stopButton.focus();
  });

  function tick() {
    const seconds = session ? session.seconds() : 0;
    timer.textContent = `${Math.floor(seconds / 60)}:${String(Math.floor(seconds % 60)).padStart(2, "0")}`;
    if (seconds >= config.maxSeconds) stop();
  }

  async function stop() {
    if (!session) return;
    const finished = session;
    session = null;
    const samples = await finished.stop();
    recording = encodeWav(samples, RATE);
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(recording);
    preview.hidden = false;
    stopButton.disabled = true;
    recordButton.disabled = false;
    saveButton.disabled = false;
    say(labels.stopped);
    saveButton.focus();
  }

  stopButton.addEventListener("click", stop);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!recording) return;
    if (!nameInput.value.trim()) {
      say(labels.noName, true);
      nameInput.focus();
      return;
    }
    const body = new FormData();
    body.append(nameInput.name, nameInput.value);
    body.append(nameInput.name.replace(/name$/, "file"), recording, "recording.wav");
    const token = form.querySelector('input[name="csrfmiddlewaretoken"]').value;
    saveButton.disabled = true;
    say(labels.saving);
    try {
      const response = await fetch(config.url, {
        method: "POST",
        body,
        headers: { "X-CSRFToken": token },
        credentials: "same-origin",
      });
      const answer = await response.json();
      if (response.ok) {
        recording = null;
        window.location.assign(answer.redirect);
        return;
      }
      say(labels.failed.replace("%s", answer.errors.join(" ")), true);
    } catch (error) {
      say(labels.failed.replace("%s", error.message), true);
    }
    saveButton.disabled = false;
  });

  window.addEventListener("beforeunload", (event) => {
    if (recording || session) {
      event.preventDefault();
      event.returnValue = labels.leave;
    }
  });
}

// Open the microphone and collect its samples; `onTick` is called a few times a second.
async function startRecording(onTick) {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
  const { context, source } = openContext(stream);
  const url = URL.createObjectURL(new Blob([CAPTURE_WORKLET], { type: "application/javascript" }));
  try {
    await context.audioWorklet.addModule(url);
  } finally {
    URL.revokeObjectURL(url);
  }
  const node = new AudioWorkletNode(context, "capture", {
    channelCount: 1,
    channelCountMode: "explicit", // a stereo microphone is mixed down to mono
  });
  const chunks = [];
  node.port.onmessage = (event) => chunks.push(event.data);
  source.connect(node);
  node.connect(context.destination); // outputs silence; keeps the node pulled by the graph
  const started = performance.now();
  const interval = setInterval(onTick, 250);
  return {
    seconds: () => (performance.now() - started) / 1000,
    async stop() {
      clearInterval(interval);
      stream.getTracks().forEach((track) => track.stop());
      source.disconnect();
      node.disconnect();
      const rate = context.sampleRate;
      await context.close();
      return resample(concat(chunks), rate, RATE);
    },
  };
}

// An AudioContext at 16 kHz when the browser resamples the microphone for us (Chrome); some
// browsers (Firefox) refuse a rate other than the microphone's: then record at its rate.
function openContext(stream) {
  const context = new AudioContext({ sampleRate: RATE });
  try {
    return { context, source: context.createMediaStreamSource(stream) };
  } catch {
    context.close();
    const native = new AudioContext();
    return { context: native, source: native.createMediaStreamSource(stream) };
  }
}

function concat(chunks) {
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const all = new Float32Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
}

// Down to `to` Hz by averaging each output sample's span of input (a crude low-pass, enough
// for speech on the telephone's 8 kHz).
function resample(samples, from, to) {
  if (from === to) return samples;
  const ratio = from / to;
  const out = new Float32Array(Math.floor(samples.length / ratio));
  for (let i = 0; i < out.length; i++) {
    const start = Math.floor(i * ratio);
    const end = Math.max(start + 1, Math.min(samples.length, Math.floor((i + 1) * ratio)));
    let sum = 0;
    for (let j = start; j < end; j++) sum += samples[j];
    out[i] = sum / (end - start);
  }
  return out;
}

// A complete WAV file: RIFF header, 'fmt ' (PCM, mono, 16-bit) and 'data'.
function encodeWav(samples, rate) {
  const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (offset, value) => {
    for (let i = 0; i < value.length; i++) view.setUint8(offset + i, value.charCodeAt(i));
  };
  text(0, "RIFF");
  view.setUint32(4, 36 + samples.length * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true); // size of the fmt chunk
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true); // bytes per second
  view.setUint16(32, 2, true); // bytes per sample frame
  view.setUint16(34, 16, true); // bits per sample
  text(36, "data");
  view.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return new Blob([view], { type: "audio/wav" });
}
