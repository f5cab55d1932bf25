// Room view: a camera feed or room photo with draggable, resizable, rotatable, flippable product cut-outs, a
// contact shadow that follows each product's footprint, true-to-scale sizing and a PNG snapshot. No libraries, no
// inline code (CSP). window.RoomFit.addProduct(cutoutUrl, meta) places any cut-out (the catalogue's, or later an
// uploaded one) given its metadata.
"use strict";
(function () {
  const app = document.getElementById("room-app");
  if (!app) return;

  const stage = document.getElementById("stage");
  const overlays = document.getElementById("overlays");
  const video = document.getElementById("camera");
  let photo = document.getElementById("room-photo");  // replaced by each newly loaded room photo
  const message = document.getElementById("message");
  const calibSvg = document.getElementById("calibration");
  const calibLine = document.getElementById("calib-line");
  const calibForm = document.getElementById("calib-form");
  const calibCm = document.getElementById("calib-cm");
  const controls = document.getElementById("item-controls");

  // Positions are fractions of the stage size, so they survive resizes and map directly onto the snapshot.
  const state = {
    items: [],            // {id, product, img, el, shadow, aspect, x, y, w, rot, flip, manual}
    selected: null,
    background: null,     // "camera" | "photo" | null
    stream: null,
    calibPxPerCm: null,   // calibration, in pixels of the background picture per cm (survives stage resizes)
    nextId: 1,
    bgToken: 0,           // bumped on every background change, so a late-loading one cannot win
    calibrating: false,
  };
  const MIN_W = 0.02;
  const MAX_W = 3;
  const SNAPSHOT_MAX = 2560;  // longest side of the snapshot PNG, px
  // Before calibration: the picture's longer side is taken to span 3.8 m where products stand (a phone camera's
  // field of view ~3 m away). Using the longer side keeps portrait photos (a narrow view) in proportion too.
  const DEFAULT_VIEW_CM = 380;
  // Shop photos are taken from a little above: the camera elevation assumed when reading a cut-out's aspect.
  const ELEVATION = (15 * Math.PI) / 180;
  // For products without stated size: typical widths (drawn, and marked "size unknown"), and typical heights used to
  // read a three-quarter view when only width and depth are stated.
  const TYPICAL_WIDTH_CM = {
    chair: 50, couch: 200, bed: 140, vase: 15, bowl: 20, cup: 9, "wine-glass": 8, "potted-plant": 25,
  };
  const TYPICAL_HEIGHT_CM = { chair: 85, couch: 80, bed: 95 };
  const SHADOW = { top: 0.9, height: 0.16 };
  const BASE = 0.9;  // where new products stand: this far down the picture (the floor near the camera)  // the shadow strip, relative to the item's box (as in the CSS)

  function say(text, isError) {
    message.textContent = text;
    message.classList.toggle("error", Boolean(isError));
  }

  function stageSize() {
    const r = stage.getBoundingClientRect();
    return { w: r.width, h: r.height, left: r.left, top: r.top };
  }

  // ---- background: sample room, uploaded photo or camera ----------------------------------------------------------

  function backgroundSize() {
    if (state.background === "camera" && video.videoWidth) return { w: video.videoWidth, h: video.videoHeight };
    if (state.background === "photo" && photo.naturalWidth) return { w: photo.naturalWidth, h: photo.naturalHeight };
    return null;
  }

  // The background fills the stage like CSS object-fit: cover. A phone's stage is taller than a landscape photo,
  // so its sides are cropped: scale is stage px per background px, (x, y) the visible part's corner in background px.
  function cover() {
    const s = stageSize();
    const bg = backgroundSize() || { w: s.w, h: s.h };
    const scale = Math.max(s.w / bg.w, s.h / bg.h) || 1;
    return { scale, x: (bg.w - s.w / scale) / 2, y: (bg.h - s.h / scale) / 2, w: s.w / scale, h: s.h / scale, bg };
  }

  // Stage pixels per cm where products stand: calibrated, or estimated from the picture's size and orientation.
  function pxPerCm() {
    const c = cover();
    const perBgPx = state.calibPxPerCm || Math.max(c.bg.w, c.bg.h) / DEFAULT_VIEW_CM;
    return perBgPx * c.scale;
  }

  function setAspect(width, height) {
    if (width > 0 && height > 0) {
      stage.style.aspectRatio = width + " / " + height;
      stage.style.setProperty("--aspect", String(width / height));  // keeps the whole stage on screen (CSS)
    }
    resizeAll();
  }

  function stopCamera() {
    if (state.stream) {
      state.stream.getTracks().forEach((t) => t.stop());
      state.stream = null;
    }
    video.hidden = true;
  }

  // The photo is decoded off-stage and swapped in only once it has loaded: a file that is not an image must leave
  // the current background (camera or photo) as it was, not stop the camera or show a broken image.
  function showPhoto(src, label, done) {
    const token = ++state.bgToken;
    const img = new Image();
    img.alt = "";
    img.className = photo.className;
    // A loaded image keeps its pixels, so an uploaded file's URL can go as soon as the outcome is known.
    const release = () => { if (src.startsWith("blob:")) URL.revokeObjectURL(src); };
    img.onload = () => {
      release();
      if (token !== state.bgToken) return;  // the user picked another background meanwhile
      stopCamera();
      img.id = photo.id;
      photo.replaceWith(img);
      photo = img;
      state.background = "photo";
      state.calibPxPerCm = null;  // a calibration belongs to the picture it was drawn on
      setAspect(img.naturalWidth, img.naturalHeight);
      if (label) say(label);
      if (done) done();
    };
    img.onerror = () => {
      release();
      if (done) done();
      if (token !== state.bgToken) return;
      say("That file could not be opened as an image, so the room is unchanged. Try a JPEG, PNG or WebP photo.",
        true);
    };
    img.src = src;
  }

  async function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say("This browser cannot use a camera here (it needs HTTPS). Upload a room photo or pick a sample room.", true);
      return;
    }
    const token = ++state.bgToken;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 720 } },
        audio: false,
      });
      if (token !== state.bgToken) { stream.getTracks().forEach((t) => t.stop()); return; }
      stopCamera();
      state.stream = stream;
      video.srcObject = stream;
      await video.play();
      photo.hidden = true;
      video.hidden = false;
      state.background = "camera";
      state.calibPxPerCm = null;
      setAspect(video.videoWidth, video.videoHeight);
      say("Camera on. Place the products, then take a snapshot.");
    } catch (err) {
      const refused = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
      const missing = err && (err.name === "NotFoundError" || err.name === "OverconstrainedError");
      say(refused ? "Camera access was refused. Upload a photo of your room or pick a sample room instead."
        : missing ? "No camera was found. Upload a photo of your room or pick a sample room instead."
          : "The camera could not be started (" + (err && err.name) + "). Upload a room photo instead.", true);
    }
  }

  document.getElementById("btn-camera").addEventListener("click", startCamera);
  // A phone turned sideways changes the stream's size: follow it.
  video.addEventListener("resize", () => {
    if (state.background === "camera") setAspect(video.videoWidth, video.videoHeight);
  });
  document.getElementById("room-file").addEventListener("change", (e) => {
    const file = e.target.files && e.target.files[0];
    e.target.value = "";  // otherwise choosing the same file again (e.g. after fixing it) fires no "change"
    if (!file) return;
    showPhoto(URL.createObjectURL(file), "Your room photo is loaded.");  // the photo never leaves the browser
  });

  const rooms = JSON.parse(app.dataset.rooms || "[]");
  const roomBox = document.getElementById("sample-rooms");
  rooms.forEach((src, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "room-thumb";
    b.title = "Sample room " + (i + 1);
    b.setAttribute("aria-label", "Sample room " + (i + 1));
    const img = document.createElement("img");
    img.src = src;
    img.alt = "";
    b.appendChild(img);
    b.addEventListener("click", () => showPhoto(src, "Sample room " + (i + 1) + "."));
    roomBox.appendChild(b);
  });

  // ---- true size ------------------------------------------------------------------------------------------------

  // How wide a box of width w, depth d and height h looks, and the height/width ratio of its picture, turned by
  // yaw from a front view and seen from ELEVATION above.
  function boxView(w, d, h, yaw) {
    const across = w * Math.cos(yaw) + d * Math.sin(yaw);
    const up = h * Math.cos(ELEVATION) + (w * Math.sin(yaw) + d * Math.cos(yaw)) * Math.sin(ELEVATION);
    return { across, ratio: up / across };
  }

  // The real width (cm) the cut-out's picture spans, and how it was found. A three-quarter view of a 160 × 80 cm
  // sofa spans more than 160 cm: the yaw that gives the cut-out's own aspect is read off the stated sizes.
  function pictureWidthCm(product, aspect) {
    const d = product.dimensions || {};
    if (d.diameter_cm) return { cm: d.diameter_cm, known: true, how: "diameter" };
    if (d.width_cm && d.depth_cm) {
      const h = d.height_cm || TYPICAL_HEIGHT_CM[product.class];
      if (h) {
        const views = [];
        for (let deg = 0; deg <= 75; deg += 0.5) {
          const v = boxView(d.width_cm, d.depth_cm, h, (deg * Math.PI) / 180);
          views.push({ err: Math.abs(Math.log(v.ratio / aspect)), deg, cm: v.across });
        }
        // Near a front view the aspect hardly changes with the turn, so a 1% error in it could mean 10°: of the
        // views within 2% of the best fit, take the most frontal (shop photos mostly are).
        const bestErr = Math.min(...views.map((v) => v.err));
        const view = views.find((v) => v.err <= bestErr + 0.02);
        return { cm: view.cm, known: true, how: view.deg < 5 ? "front" : "three-quarter", yaw: view.deg };
      }
    }
    if (d.width_cm) return { cm: d.width_cm, known: true, how: "front" };
    if (d.height_cm) return { cm: d.height_cm / aspect, known: true, how: "height" };
    return { cm: TYPICAL_WIDTH_CM[product.class] || 60, known: false, how: "typical" };
  }

  function applySize(item) {
    const s = stageSize();
    if (!s.w) return;
    item.w = Math.min(MAX_W, Math.max(0.005, (item.size.cm * pxPerCm() * item.padFrac) / s.w));
    item.manual = false;
    markSize(item);
  }

  function markSize(item) {
    const label = !item.size.known ? "size unknown" : item.manual ? "resized" : state.calibPxPerCm ? "real size"
      : "estimated scale";
    item.el.dataset.size = !item.size.known ? "unknown" : item.manual ? "manual" : state.calibPxPerCm ? "real"
      : "estimated";
    item.badge.textContent = label;
  }

  // ---- items --------------------------------------------------------------------------------------------------------

  function layout(item) {
    const s = stageSize();
    const wPx = item.w * s.w;
    const hPx = wPx * item.aspect;
    const el = item.el;
    el.style.width = wPx + "px";
    el.style.height = hPx + "px";
    el.style.transform = "translate(" + (item.x * s.w - wPx / 2) + "px," + (item.y * s.h - hPx / 2) + "px) rotate("
      + item.rot + "deg)";
    item.img.style.transform = item.flip ? "scaleX(-1)" : "";
    item.shadow.style.transform = item.flip ? "scaleX(-1)" : "";
    el.dataset.x = item.x.toFixed(4);
    el.dataset.y = item.y.toFixed(4);
    el.dataset.w = item.w.toFixed(4);
    el.dataset.productWidthPx = (wPx / item.padFrac).toFixed(1);  // the product's own width, without the margin
    el.dataset.rot = item.rot.toFixed(1);
    el.dataset.flip = item.flip ? "1" : "0";
    el.classList.toggle("small", wPx < 64 || hPx < 64);
  }

  // A new stage size or background: products not resized by hand keep their real size at the new scale, standing
  // where they stood (the bottom edge stays put).
  function resizeAll() {
    const s = stageSize();
    state.items.forEach((item) => {
      if (!item.manual && s.h) {
        const base = item.y + (item.w * s.w * item.aspect) / (2 * s.h);
        applySize(item);
        item.y = base - (item.w * s.w * item.aspect) / (2 * s.h);
      }
      layout(item);
    });
    arrangeRow();
  }

  function select(item) {
    state.selected = item;
    state.items.forEach((it) => it.el.classList.toggle("selected", it === item));
    controls.querySelectorAll("button").forEach((b) => { b.disabled = !item; });
  }

  // A contact shadow that follows the footprint: the bottom of the silhouette squashed flat and blurred, so chair
  // legs leave four soft spots and a sofa's base a band.
  function makeShadow(img) {
    const c = document.createElement("canvas");
    c.width = 160;
    c.height = 28;
    c.className = "shadow";
    c.setAttribute("aria-hidden", "true");
    const ctx = c.getContext("2d");
    const nw = img.naturalWidth;
    const nh = img.naturalHeight;
    ctx.filter = "blur(3px)";
    ctx.drawImage(img, 0, nh * 0.75, nw, nh * 0.25, 6, 6, c.width - 12, c.height - 12);
    ctx.filter = "none";
    ctx.globalCompositeOperation = "source-in";
    ctx.fillStyle = "rgba(0, 0, 0, 0.75)";
    ctx.fillRect(0, 0, c.width, c.height);
    return c;
  }

  // A cut-out with no opaque pixel means the model found no product in the photo.
  function isBlank(img) {
    const c = document.createElement("canvas");
    c.width = 24;
    c.height = 24;
    const ctx = c.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(img, 0, 0, 24, 24);
    const px = ctx.getImageData(0, 0, 24, 24).data;
    for (let i = 3; i < px.length; i += 4) {
      if (px[i] > 16) return false;
    }
    return true;
  }

  // The item's box in stage fractions.
  function box(it, s) {
    const h = (it.w * s.w * it.aspect) / (s.h || 1);
    return { x0: it.x - it.w / 2, x1: it.x + it.w / 2, y0: it.y - h / 2, y1: it.y + h / 2 };
  }

  // A free spot on the floor (the lower part of the picture) for a new item: the base position whose box overlaps
  // the items already placed least, inside the picture, preferring the middle; the item stands on that spot.
  function freeSpot(item) {
    const s = stageSize();
    const hFrac = (item.w * s.w * item.aspect) / (s.h || 1);
    const others = state.items.filter((it) => it !== item).map((it) => box(it, s));
    const half = Math.min(item.w / 2, 0.5);
    let best = null;
    for (let x = half; x <= 1 - half + 1e-9; x += 0.025) {
      for (let base = 0.72; base <= 0.97 + 1e-9; base += 0.025) {
        const y0 = Math.max(0, base - hFrac);
        let overlap = 0;
        others.forEach((o) => {
          const ox = Math.max(0, Math.min(x + item.w / 2, o.x1) - Math.max(x - item.w / 2, o.x0));
          const oy = Math.max(0, Math.min(base, o.y1) - Math.max(y0, o.y0));
          overlap += ox * oy;
        });
        const cost = overlap / Math.max(item.w * hFrac, 1e-6) + 0.1 * Math.abs(x - 0.5) + 0.05 * Math.abs(base - BASE);
        if (!best || cost < best.cost) best = { cost, x, base };
      }
    }
    item.x = best ? best.x : 0.5;
    item.y = Math.max(hFrac / 2, (best ? best.base : BASE) - hFrac / 2);
  }

  // Items nobody has moved yet stand side by side along the floor while they fit across the picture (the first
  // product placed in the middle would otherwise leave no room for a second); returns false when they do not fit.
  function arrangeRow() {
    const s = stageSize();
    const row = state.items.filter((it) => it.auto);
    const gap = 0.02;
    const total = row.reduce((sum, it) => sum + it.w, 0) + gap * (row.length - 1);
    if (total > 0.98) return false;
    let x = 0.5 - total / 2;
    row.forEach((it) => {
      const h = (it.w * s.w * it.aspect) / (s.h || 1);
      it.x = x + it.w / 2;
      it.y = Math.max(h / 2, BASE - h / 2);
      x += it.w + gap;
      layout(it);
    });
    return true;
  }

  // A new item goes in front of those standing behind it (a higher base in the picture is farther away).
  function stackByDepth(item) {
    const s = stageSize();
    const base = (it) => box(it, s).y1;
    const rest = state.items.filter((it) => it !== item);
    const at = rest.findIndex((it) => base(it) > base(item));
    rest.splice(at < 0 ? rest.length : at, 0, item);
    state.items = rest;
    state.items.forEach((it) => overlays.appendChild(it.el));
  }

  function sizeText(product) {
    const d = product.dimensions || {};
    const parts = [["W", d.width_cm], ["D", d.depth_cm], ["H", d.height_cm], ["Ø", d.diameter_cm]]
      .filter((p) => p[1]).map((p) => p[0] + " " + p[1]);
    return parts.length ? parts.join(" × ") + " cm" : "size unknown";
  }

  // Place a cut-out on the stage. meta: {name, class, category, dimensions {width_cm, depth_cm, height_cm,
  // diameter_cm}, cutout_margin (the crop margin around the product, a fraction of its larger side), id (optional)}. Resolves to the item, or null when the cut-out is empty or cannot be loaded.
  function addProduct(cutoutUrl, meta) {
    const product = Object.assign({ name: "Product", dimensions: {} }, meta);
    return new Promise((resolve) => {
      const img = new Image();
      img.className = "cut";
      img.alt = "";
      img.draggable = false;
      img.onload = () => {
        if (isBlank(img)) {
          say("No product was found in the photo of " + product.name + ", so there is nothing to place.", true);
          resolve(null);
          return;
        }
        const nw = img.naturalWidth;
        const nh = img.naturalHeight;
        const aspect = nh / nw;
        // The cut-out has a margin of cutout_margin × the product's larger side around the product: size and
        // aspect are the product's own, without it.
        const pad = ((product.cutout_margin || 0) * Math.max(nw, nh)) / (1 + 2 * (product.cutout_margin || 0));
        const item = {
          id: state.nextId++, product, img, aspect, x: 0.5, y: 0.7, w: 0.3, rot: 0, flip: false, manual: false,
          auto: true,  // placed by the app, not moved by hand yet
          size: pictureWidthCm(product, (nh - 2 * pad) / (nw - 2 * pad)), padFrac: nw / (nw - 2 * pad),
        };
        const el = document.createElement("div");
        el.className = "item";
        el.tabIndex = 0;
        el.setAttribute("role", "group");
        el.setAttribute("aria-roledescription", "placed product");
        el.setAttribute("aria-label", product.name + " (" + sizeText(product)
          + "). Arrows move, + and - resize, r rotates, f flips, [ and ] change the layer.");
        if (product.id !== undefined) el.dataset.productId = product.id;
        item.shadow = makeShadow(img);
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.setAttribute("aria-hidden", "true");
        item.badge = badge;
        const resize = document.createElement("span");
        resize.className = "handle resize";
        resize.dataset.handle = "resize";
        resize.title = "Drag to resize";
        const rotate = document.createElement("span");
        rotate.className = "handle rotate";
        rotate.dataset.handle = "rotate";
        rotate.title = "Drag to rotate";
        el.append(item.shadow, img, badge, resize, rotate);
        item.el = el;
        overlays.appendChild(el);
        state.items.push(item);
        bindItem(item);
        applySize(item);
        if (!arrangeRow()) {
          item.auto = false;
          freeSpot(item);
        }
        stackByDepth(item);
        layout(item);
        select(item);
        say(item.size.known
          ? product.name + " is shown at " + (state.calibPxPerCm ? "its real size." : "an estimated scale: calibrate for real size.")
          : product.name + ": size unknown (the shop gives no dimensions), so it is drawn at a typical size.");
        resolve(item);
      };
      img.onerror = () => {
        say("The cut-out of " + product.name + " is not available (is the model loaded?).", true);
        resolve(null);
      };
      img.src = cutoutUrl;
    });
  }

  function removeItem(item) {
    item.el.remove();
    state.items = state.items.filter((it) => it !== item);
    select(state.items[state.items.length - 1] || null);
  }

  // Layering: the DOM order is the stacking order (and the snapshot's drawing order).
  function restack(item, step) {
    const i = state.items.indexOf(item);
    const j = Math.min(state.items.length - 1, Math.max(0, i + step));
    if (i === j) return;
    state.items.splice(i, 1);
    state.items.splice(j, 0, item);
    state.items.forEach((it) => overlays.appendChild(it.el));
    item.el.focus({ preventScroll: true });
  }

  function scaleItem(item, factor) {
    item.w = Math.min(MAX_W, Math.max(MIN_W, item.w * factor));
    item.manual = true;
    markSize(item);
    layout(item);
  }

  // Pointer gestures: one pointer drags (or works a handle), two pointers pinch-zoom and twist.
  function bindItem(item) {
    const el = item.el;
    const pointers = new Map();
    let gesture = null;

    function center() {
      const s = stageSize();
      return { x: s.left + item.x * s.w, y: s.top + item.y * s.h };
    }

    function begin() {
      const pts = [...pointers.values()];
      const c = center();
      gesture = { x: item.x, y: item.y, w: item.w, rot: item.rot, pts: pts.map((p) => ({ ...p })), cx: c.x, cy: c.y };
    }

    el.addEventListener("pointerdown", (e) => {
      if (state.calibrating) return;
      e.preventDefault();
      el.focus({ preventScroll: true });
      select(item);
      el.setPointerCapture(e.pointerId);
      pointers.set(e.pointerId, { x: e.clientX, y: e.clientY, handle: e.target.dataset.handle || null });
      begin();
    });

    el.addEventListener("pointermove", (e) => {
      if (!pointers.has(e.pointerId) || !gesture) return;
      pointers.get(e.pointerId).x = e.clientX;
      pointers.get(e.pointerId).y = e.clientY;
      const s = stageSize();
      const pts = [...pointers.values()];
      const start = gesture.pts;
      if (pts.length >= 2 && start.length >= 2) {
        const d0 = Math.hypot(start[1].x - start[0].x, start[1].y - start[0].y) || 1;
        const d1 = Math.hypot(pts[1].x - pts[0].x, pts[1].y - pts[0].y);
        const a0 = Math.atan2(start[1].y - start[0].y, start[1].x - start[0].x);
        const a1 = Math.atan2(pts[1].y - pts[0].y, pts[1].x - pts[0].x);
        item.w = Math.min(MAX_W, Math.max(MIN_W, gesture.w * (d1 / d0)));
        item.rot = gesture.rot + ((a1 - a0) * 180) / Math.PI;
        item.x = gesture.x + ((pts[0].x + pts[1].x - start[0].x - start[1].x) / 2) / s.w;
        item.y = gesture.y + ((pts[0].y + pts[1].y - start[0].y - start[1].y) / 2) / s.h;
        item.manual = true;
        markSize(item);
      } else if (start[0].handle === "resize") {
        const r0 = Math.hypot(start[0].x - gesture.cx, start[0].y - gesture.cy) || 1;
        const r1 = Math.hypot(e.clientX - gesture.cx, e.clientY - gesture.cy);
        item.w = Math.min(MAX_W, Math.max(MIN_W, gesture.w * (r1 / r0)));
        item.manual = true;
        markSize(item);
      } else if (start[0].handle === "rotate") {
        const a0 = Math.atan2(start[0].y - gesture.cy, start[0].x - gesture.cx);
        const a1 = Math.atan2(e.clientY - gesture.cy, e.clientX - gesture.cx);
        item.rot = gesture.rot + ((a1 - a0) * 180) / Math.PI;
      } else {
        item.x = gesture.x + (e.clientX - start[0].x) / s.w;
        item.y = gesture.y + (e.clientY - start[0].y) / s.h;
      }
      item.auto = false;
      layout(item);
    });

    function end(e) {
      if (!pointers.delete(e.pointerId)) return;
      if (pointers.size) begin(); else gesture = null;
    }
    el.addEventListener("pointerup", end);
    el.addEventListener("pointercancel", end);

    el.addEventListener("wheel", (e) => {
      e.preventDefault();
      select(item);
      if (e.shiftKey) {
        item.rot += e.deltaY > 0 ? 3 : -3;
        layout(item);
      } else {
        scaleItem(item, Math.exp(-e.deltaY * 0.0015));
      }
    }, { passive: false });

    el.addEventListener("keydown", (e) => {
      const step = e.shiftKey ? 0.05 : 0.01;
      const handled = {
        ArrowLeft: () => { item.x -= step; },
        ArrowRight: () => { item.x += step; },
        ArrowUp: () => { item.y -= step; },
        ArrowDown: () => { item.y += step; },
        "+": () => scaleItem(item, 1.05),
        "=": () => scaleItem(item, 1.05),
        "-": () => scaleItem(item, 1 / 1.05),
        r: () => { item.rot += 5; },
        R: () => { item.rot -= 5; },
        f: () => { item.flip = !item.flip; },
        "[": () => restack(item, -1),
        "]": () => restack(item, 1),
        Delete: () => removeItem(item),
        Backspace: () => removeItem(item),
      }[e.key];
      if (!handled) return;
      e.preventDefault();
      item.auto = false;
      handled();
      if (state.items.includes(item)) layout(item);
    });
    el.addEventListener("focus", () => select(item));
  }

  controls.addEventListener("click", (e) => {
    const action = e.target.closest("button") && e.target.closest("button").dataset.action;
    const item = state.selected;
    if (!action || !item) return;
    if (action === "rotate-left") item.rot -= 15;
    if (action === "rotate-right") item.rot += 15;
    if (action === "flip") item.flip = !item.flip;
    if (action === "smaller") scaleItem(item, 1 / 1.1);
    if (action === "bigger") scaleItem(item, 1.1);
    if (action === "back") restack(item, -1);
    if (action === "forward") restack(item, 1);
    if (action === "remove") { removeItem(item); return; }
    layout(item);
  });

  // ---- calibration: draw a line over something of known length -----------------------------------------------------

  let line = null;
  document.getElementById("btn-calibrate").addEventListener("click", () => {
    state.calibrating = true;
    calibSvg.removeAttribute("hidden");  // SVG elements have no .hidden property
    stage.classList.add("calibrating");
    calibLine.setAttribute("x2", calibLine.getAttribute("x1"));
    say("Draw a line over something whose length you know, e.g. across a door (80 cm).");
  });

  calibSvg.addEventListener("pointerdown", (e) => {
    const s = stageSize();
    calibSvg.setPointerCapture(e.pointerId);
    line = { x1: e.clientX - s.left, y1: e.clientY - s.top, x2: e.clientX - s.left, y2: e.clientY - s.top };
    drawLine();
  });
  calibSvg.addEventListener("pointermove", (e) => {
    if (!line) return;
    const s = stageSize();
    line.x2 = e.clientX - s.left;
    line.y2 = e.clientY - s.top;
    drawLine();
  });
  calibSvg.addEventListener("pointerup", () => {
    if (!line) return;
    if (Math.hypot(line.x2 - line.x1, line.y2 - line.y1) < 10) {
      say("That line is too short: press and drag across the object.", true);
      line = null;
      return;
    }
    calibForm.hidden = false;
    calibCm.focus();
  });

  function drawLine() {
    calibLine.setAttribute("x1", line.x1);
    calibLine.setAttribute("y1", line.y1);
    calibLine.setAttribute("x2", line.x2);
    calibLine.setAttribute("y2", line.y2);
  }

  function endCalibration() {
    state.calibrating = false;
    calibSvg.setAttribute("hidden", "");
    calibForm.hidden = true;
    stage.classList.remove("calibrating");
    line = null;
  }

  calibForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const cm = parseFloat(calibCm.value);
    if (!line || !(cm > 0)) {
      say("Enter the length in centimetres.", true);
      return;
    }
    state.calibPxPerCm = Math.hypot(line.x2 - line.x1, line.y2 - line.y1) / cover().scale / cm;
    endCalibration();
    state.items.forEach((item) => { applySize(item); layout(item); });
    arrangeRow();
    const unknown = state.items.filter((it) => !it.size.known).length;
    const snapped = state.items.length - unknown;
    say("Scale set: 1 m = " + Math.round(pxPerCm() * 100) + " px. " + snapped + " product(s) at real size"
      + (unknown ? "; " + unknown + " of unknown size drawn at a typical size." : ".")
      + " Real size holds at the depth of the line you drew.");
  });
  document.getElementById("calib-cancel").addEventListener("click", () => { endCalibration(); say(""); });

  // ---- snapshot: compose the visible part of the background + products (+ shadows) into a PNG ---------------------

  function drawItem(ctx, item, W, H) {
    const w = item.w * W;
    const h = w * item.aspect;
    ctx.save();
    ctx.translate(item.x * W, item.y * H);
    ctx.rotate((item.rot * Math.PI) / 180);
    if (item.flip) ctx.scale(-1, 1);
    ctx.drawImage(item.shadow, -w / 2, -h / 2 + h * SHADOW.top, w, h * SHADOW.height);
    ctx.drawImage(item.img, -w / 2, -h / 2, w, h);
    ctx.restore();
  }

  document.getElementById("btn-snapshot").addEventListener("click", () => {
    const c = cover();
    let bg = null;
    if (state.background === "camera" && video.videoWidth) bg = video;
    else if (state.background === "photo" && photo.naturalWidth) bg = photo;
    // What the stage shows, at the background's own resolution (capped: phone photos can be 12+ MP).
    const cap = Math.min(1, SNAPSHOT_MAX / Math.max(c.w, c.h));
    const W = Math.round(c.w * cap);
    const H = Math.round(c.h * cap);
    const canvas = document.createElement("canvas");
    canvas.width = W;
    canvas.height = H;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#f4f1ec";
    ctx.fillRect(0, 0, W, H);
    if (bg) ctx.drawImage(bg, c.x, c.y, c.w, c.h, 0, 0, W, H);
    state.items.forEach((item) => drawItem(ctx, item, W, H));
    canvas.toBlob((blob) => {
      if (!blob) { say("The snapshot could not be made.", true); return; }
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = "roomfit-snapshot.png";
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      say("Snapshot saved (" + W + "×" + H + ").");
    }, "image/png");
  });

  // ---- product picker: thumbnails, filtered by category as soon as one is chosen -----------------------------------

  const addButton = document.getElementById("btn-add");
  const picker = document.getElementById("picker");
  const pickerClass = document.getElementById("picker-class");
  const pickerList = document.getElementById("picker-list");
  let catalogue = [];

  function shopperClass(name) {
    const t = (name || "").replace(/-/g, " ");
    return t.charAt(0).toUpperCase() + t.slice(1);
  }

  function renderPicker() {
    pickerList.textContent = "";
    catalogue.filter((p) => !pickerClass.value || p.class === pickerClass.value).forEach((p) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "pick";
      b.dataset.productId = String(p.id);
      const img = document.createElement("img");
      img.src = p.image_url;
      img.alt = "";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = p.name;
      const size = document.createElement("span");
      size.className = "meta";
      size.textContent = (p.category || shopperClass(p.class)) + " · " + sizeText(p);
      b.append(img, name, size);
      b.addEventListener("click", () => {
        togglePicker(false);
        addProduct(p.cutout_url, p);
      });
      li.appendChild(b);
      pickerList.appendChild(li);
    });
  }

  function togglePicker(open) {
    picker.hidden = !open;
    addButton.setAttribute("aria-expanded", String(open));
    if (open) (pickerList.querySelector("button") || pickerClass).focus();
  }

  addButton.addEventListener("click", () => togglePicker(picker.hidden));
  pickerClass.addEventListener("change", renderPicker);
  picker.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { togglePicker(false); addButton.focus(); }
  });

  async function loadPicker() {
    try {
      const resp = await fetch(app.dataset.productsApi + "?per_page=100");
      const body = await resp.json();
      if (!body.success) throw new Error(body.error && body.error.message);
      catalogue = body.products;
      body.classes.forEach((c) => {
        const opt = document.createElement("option");
        opt.value = c.name;
        opt.textContent = shopperClass(c.name) + " (" + c.count + ")";
        pickerClass.appendChild(opt);
      });
      renderPicker();
    } catch (err) {
      say("The product list could not be loaded.", true);
    }
  }

  window.addEventListener("resize", resizeAll);
  window.RoomFit = Object.freeze({ addProduct, sizeText });
  const initial = JSON.parse(app.dataset.products || "[]");
  // The products of the link are placed once the first room is shown: where the floor is and the default scale
  // depend on the picture's size. One after another, so each finds a free spot among those already placed.
  const placeInitial = () => initial.reduce((prev, p) => prev.then(() => addProduct(p.cutout_url, p)),
    Promise.resolve());
  if (rooms.length) {
    showPhoto(rooms[0], "", placeInitial);
  } else {
    setAspect(4, 3);
    placeInitial();
  }
  loadPicker();
  select(null);
  if (!initial.length) {
    say("Add a product to place, then choose a camera or a room photo.");
  }
})();
