// meshcast's web page: a client of the gateway's API, as any other (docs/client.py, curl).
// Every call carries the API key, kept in this tab's session storage only.
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';

const KEY_ITEM = 'meshcast-api-key';
const MAX_BYTES = Number(document.body.dataset.maxBytes);
const CONTENT_TYPES = document.body.dataset.contentTypes.split(',');
const FORMATS = document.body.dataset.formats.split(','); // the job's files, all by default
const POLL_MS = 2000; // when the event stream breaks, the job is polled instead
const DIMMED_OPACITY = 0.2; // the other people, while one is picked
const ENDED = ['succeeded', 'failed', 'cancelled']; // a job's states that nothing follows
const MB = 1e6;
// The pipeline's assumed camera, 2·atan(1/2) across the frame's diagonal
// (service/pipeline/camera.py): from the origin, the 3D view then sees what the video saw.
const DIAGONAL_FOV = 2 * Math.atan(0.5);
const DEFAULT_DEPTH = -5; // metres: where the view turns when no one was found

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

function apiKey() {
  return $('key').value.trim();
}

function showMessage(text) {
  $('message').textContent = text;
  $('message').hidden = !text;
}

// The API's error body, {"error": {"code", "message"}}, as an ApiError.
async function errorOf(response) {
  try {
    const body = await response.json();
    return new ApiError(body.error.message, body.error.code);
  } catch {
    return new ApiError(`the gateway answered ${response.status} ${response.statusText}`, null);
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${apiKey()}`, ...(options.headers || {}) },
  });
  if (!response.ok) throw await errorOf(response);
  return response;
}

// The check the gateway makes first, made before a byte is sent.
function refusal(file) {
  if (file.size > MAX_BYTES) {
    return `${file.name} is ${(file.size / MB).toFixed(1)} MB: the gateway takes videos of at most ${(MAX_BYTES / MB).toFixed(0)} MB`;
  }
  if (file.size === 0) return `${file.name} is empty`;
  if (file.type && !file.type.startsWith('video/') && !CONTENT_TYPES.includes(file.type)) {
    return `${file.name} is not a video (${file.type})`;
  }
  return null;
}

// The job's options as the form sets them (service/jobs/records.py, JobOptions).
function jobOptions() {
  const options = {
    smooth: $('smooth').checked,
    preview_keypoints: $('preview-keypoints').checked,
    formats: FORMATS.filter((name) => $(`format-${name}`).checked),
  };
  const length = $('min-track-length').value;
  if (length !== '') options.min_track_length = Number(length);
  return options;
}

function upload(file) {
  const options = jobOptions();
  const why = refusal(file) ?? (options.formats.length ? null : 'choose at least one file to make');
  if (why) {
    showMessage(why);
    return;
  }
  showMessage('');
  const form = new FormData();
  form.append('options', JSON.stringify(options)); // before the video, as the gateway reads it
  form.append('video', file, file.name);
  const request = new XMLHttpRequest(); // fetch() reports no upload progress
  const bar = $('upload-progress');
  bar.hidden = false;
  bar.value = 0;
  request.upload.onprogress = (event) => {
    if (event.lengthComputable) bar.value = event.loaded / event.total;
  };
  request.onload = () => {
    bar.hidden = true;
    let body = null;
    try {
      body = JSON.parse(request.responseText);
    } catch {
      body = null;
    }
    if (request.status === 202 && body) {
      follow(body.id);
      refreshJobs();
    } else {
      showMessage(body?.error?.message ?? `the upload failed (${request.status})`);
    }
  };
  request.onerror = () => {
    bar.hidden = true;
    showMessage('the upload did not reach the gateway');
  };
  request.open('POST', 'jobs');
  request.setRequestHeader('Authorization', `Bearer ${apiKey()}`);
  request.send(form);
}

function showJob(job) {
  $('job').hidden = false;
  $('job-id').textContent = job.id ?? job.job_id;
  $('job-state').textContent = job.state ?? '';
  const progress = job.progress ?? job;
  $('job-stage').textContent = progress.stage ? `${progress.stage} ${progress.done}/${progress.total}` : '';
  $('job-progress').value = progress.total ? progress.done / progress.total : 0;
}

async function finished(id, state, message) {
  if (state === 'succeeded') await openJob(id);
  else if (state === 'failed') showMessage(message || 'the job failed');
  refreshJobs();
}

// Server-sent events through fetch(): EventSource cannot send the Authorization header.
async function follow(id) {
  $('viewer').hidden = true;
  showJob({ id, state: 'queued', progress: { stage: '', done: 0, total: 0 } });
  try {
    const response = await api(`jobs/${id}/events`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = message.split('\n').find((line) => line.startsWith('data: '));
        if (!data) continue; // a keep-alive comment
        const event = JSON.parse(data.slice('data: '.length));
        if (event.error) throw new ApiError(event.error.message, event.error.code);
        showJob(event);
        if (ENDED.includes(event.state)) {
          await finished(id, event.state, event.error_message);
          return;
        }
      }
    }
  } catch (error) {
    if (error instanceof ApiError && error.code === 'job_not_found') {
      showMessage(error.message);
      return;
    }
  }
  poll(id);
}

async function poll(id) {
  try {
    const job = await (await api(`jobs/${id}`)).json();
    showJob(job);
    if (ENDED.includes(job.state)) {
      await finished(id, job.state, job.error?.message);
      return;
    }
  } catch (error) {
    showMessage(error.message);
    return;
  }
  setTimeout(() => poll(id), POLL_MS);
}

async function refreshJobs() {
  const rows = $('job-rows');
  if (!apiKey()) return;
  let jobs;
  try {
    jobs = (await (await api('jobs')).json()).jobs;
  } catch (error) {
    showMessage(error.message);
    return;
  }
  rows.replaceChildren(
    ...jobs.map((job) => {
      const row = document.createElement('tr');
      const cells = [job.id, job.state, new Date(job.created_at * 1000).toLocaleString()];
      for (const text of cells) {
        const cell = document.createElement('td');
        cell.textContent = text;
        row.append(cell);
      }
      const actions = document.createElement('td');
      const open = document.createElement('button');
      open.textContent = job.state === 'succeeded' ? 'View' : 'Follow';
      open.onclick = () => (job.state === 'succeeded' ? openJob(job.id) : follow(job.id));
      const remove = document.createElement('button');
      remove.textContent = 'Delete';
      remove.onclick = async () => {
        try {
          await api(`jobs/${job.id}`, { method: 'DELETE' });
        } catch (error) {
          showMessage(error.message);
        }
        refreshJobs();
      };
      actions.append(open, remove);
      row.append(actions);
      return row;
    }),
  );
}

// The viewer: the preview beside a 3D scene of every track's animated GLB.
const viewer = {
  renderer: null,
  scene: null,
  camera: null,
  controls: null,
  people: [], // {id, root, mixer, start, end, materials}
  objectUrls: [],
};

function setUpScene() {
  const canvas = $('scene');
  viewer.renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
  viewer.scene = new THREE.Scene();
  viewer.scene.background = new THREE.Color(0xf2f2f2);
  viewer.scene.add(new THREE.HemisphereLight(0xffffff, 0x808080, 2.5));
  const sun = new THREE.DirectionalLight(0xffffff, 1.5);
  sun.position.set(1, 2, 1);
  viewer.scene.add(sun);
  viewer.camera = new THREE.PerspectiveCamera(50, 1, 0.05, 200);
  viewer.controls = new OrbitControls(viewer.camera, canvas);
  viewer.renderer.setAnimationLoop(draw);
  $('preview').addEventListener('loadedmetadata', matchVideo);
}

// The 3D view shaped and opened like the video's frame.
function matchVideo() {
  const video = $('preview');
  if (!video.videoWidth) return;
  $('scene').style.aspectRatio = `${video.videoWidth} / ${video.videoHeight}`;
  const halfHeight = (Math.tan(DIAGONAL_FOV / 2) * video.videoHeight) / Math.hypot(video.videoWidth, video.videoHeight);
  viewer.camera.fov = THREE.MathUtils.radToDeg(2 * Math.atan(halfHeight));
  viewer.camera.updateProjectionMatrix();
}

function draw() {
  const canvas = viewer.renderer.domElement;
  const { clientWidth: width, clientHeight: height } = canvas;
  if (canvas.width !== width || canvas.height !== height) {
    viewer.renderer.setSize(width, height, false);
    viewer.camera.aspect = width / Math.max(height, 1);
    viewer.camera.updateProjectionMatrix();
  }
  const time = $('preview').currentTime;
  for (const person of viewer.people) {
    person.root.visible = time >= person.start && time <= person.end;
    if (person.root.visible) person.mixer.setTime(time - person.start);
  }
  viewer.controls.update();
  viewer.renderer.render(viewer.scene, viewer.camera);
}

async function blobUrl(url) {
  const blob = await (await api(url)).blob();
  const objectUrl = URL.createObjectURL(blob);
  viewer.objectUrls.push(objectUrl);
  return objectUrl;
}

function clearViewer() {
  for (const person of viewer.people) viewer.scene.remove(person.root);
  viewer.people = [];
  for (const url of viewer.objectUrls) URL.revokeObjectURL(url);
  viewer.objectUrls = [];
  $('person').replaceChildren(new Option('everyone', ''));
  $('downloads').replaceChildren();
}

async function openJob(id) {
  if (!viewer.renderer) setUpScene();
  clearViewer();
  let job;
  try {
    job = await (await api(`jobs/${id}`)).json();
  } catch (error) {
    showMessage(error.message);
    return;
  }
  showJob(job);
  $('viewer').hidden = false;
  const loader = new GLTFLoader();
  const everyone = new THREE.Box3();
  for (const file of job.links.downloads) {
    const item = document.createElement('li');
    const link = document.createElement('a');
    link.textContent = `${file.name} (${(file.size / MB).toFixed(2)} MB)`;
    link.href = '#';
    link.onclick = async (event) => {
      event.preventDefault();
      const save = document.createElement('a');
      save.href = await blobUrl(file.url);
      save.download = file.name.split('/').pop();
      save.click();
    };
    item.append(link);
    $('downloads').append(item);
    if (file.name.endsWith('preview.mp4')) $('preview').src = await blobUrl(file.url);
    const track = file.name.match(/(?:^|\/)track_(\d+)\.glb$/);
    if (!track) continue;
    const buffer = await (await api(file.url)).arrayBuffer();
    const gltf = await loader.parseAsync(buffer, '');
    const extras = gltf.animations[0].userData; // the frames it covers, and their rate
    const mixer = new THREE.AnimationMixer(gltf.scene);
    mixer.clipAction(gltf.animations[0]).play();
    mixer.setTime(0);
    const materials = [];
    gltf.scene.traverse((node) => {
      if (node.isMesh) {
        node.frustumCulled = false; // a skinned mesh's bounds are its rest pose's
        node.material = node.material.clone();
        materials.push(node.material);
      }
    });
    const ids = extras.frame_ids;
    const person = {
      id: Number(track[1]),
      root: gltf.scene,
      mixer,
      start: ids[0] / extras.fps,
      end: (ids[ids.length - 1] + 1) / extras.fps,
      materials,
      frameIds: ids,
      fps: extras.fps,
    };
    viewer.people.push(person);
    viewer.scene.add(gltf.scene);
    gltf.scene.updateMatrixWorld(true);
    let root = null; // the skeleton's root joint: where the person stands at the track's start
    gltf.scene.traverse((node) => {
      if (node.isSkinnedMesh && !root) root = node.skeleton.bones[0];
    });
    if (root) everyone.expandByPoint(root.getWorldPosition(new THREE.Vector3()));
    $('person').append(new Option(`person ${person.id}`, String(person.id)));
  }
  for (const [format, template] of Object.entries(job.links.meshes)) {
    const item = document.createElement('li');
    const link = document.createElement('a');
    link.textContent = `${format.toUpperCase()} of the person picked (else the first), at the video's frame`;
    link.href = '#';
    link.onclick = async (event) => {
      event.preventDefault();
      const person = viewer.people.find((p) => String(p.id) === $('person').value) ?? viewer.people[0];
      if (!person) return;
      const wanted = Math.floor($('preview').currentTime * person.fps);
      const frame = person.frameIds.reduce((best, id) => (Math.abs(id - wanted) < Math.abs(best - wanted) ? id : best));
      const url = template.replace('{track_id}', person.id).replace('{frame_id}', frame);
      const save = document.createElement('a');
      save.href = await blobUrl(url);
      save.download = `track_${person.id}_frame_${frame}.${format}`;
      save.click();
    };
    item.append(link);
    $('downloads').append(item);
  }
  // The camera where the video's was (the origin, looking down −z); orbits turn about the
  // people's depth.
  const depth = everyone.isEmpty() ? DEFAULT_DEPTH : everyone.getCenter(new THREE.Vector3()).z;
  viewer.camera.position.set(0, 0, 0);
  viewer.controls.target.set(0, 0, depth);
  viewer.controls.update();
}

function pickPerson() {
  const picked = $('person').value;
  for (const person of viewer.people) {
    const dim = picked !== '' && String(person.id) !== picked;
    for (const material of person.materials) {
      material.transparent = dim;
      material.opacity = dim ? DIMMED_OPACITY : 1;
    }
  }
}

function addFormatChoices() {
  for (const name of FORMATS) {
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.id = `format-${name}`;
    box.checked = true;
    const label = document.createElement('label');
    label.append(box, ` ${name}`);
    $('formats').append(label);
  }
}

function start() {
  addFormatChoices();
  const key = $('key');
  key.value = sessionStorage.getItem(KEY_ITEM) ?? '';
  key.addEventListener('change', () => {
    sessionStorage.setItem(KEY_ITEM, apiKey());
    refreshJobs();
  });
  $('file').addEventListener('change', () => {
    if ($('file').files.length) upload($('file').files[0]);
    $('file').value = ''; // picking the same video again (after a refusal) uploads it
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    if (event.dataTransfer.files.length) upload(event.dataTransfer.files[0]);
  });
  $('refresh').addEventListener('click', refreshJobs);
  $('person').addEventListener('change', pickPerson);
  refreshJobs();
}

start();
