// Room view: a camera feed or room photo with draggable, resizable, rotatable, flippable product cut-outs,
// a contact shadow under each, true-to-scale calibration and a PNG snapshot. No libraries, no inline code (CSP).
"use strict";
(function () {
  const app = document.getElementById("room-app");
  if (!app) return;

  const stage = document.getElementById("stage");
  const overlays = document.getElementById("overlays");
  const video = document.getElementById("camera");
  let photo = document.getElementById("room-photo");  // replaced by each newly loaded room photo
  const message = document.getElementById("message");
  const picker = document.getElementById("add-product");
  const calibSvg = document.getElementById("calibration");
  const calibLine = document.getElementById("calib-line");
  const calibForm = document.getElementById("calib-form");
  const calibCm = document.getElementById("calib-cm");

  // Positions are fractions of the stage size, so they survive resizes and map directly onto the snapshot.
  const state = {
    items: [],            // {id, product, img, el, aspect, x, y, w, rot, flip}
    selected: null,
    background: null,     // "camera" | "photo" | null
    stream: null,
    pxPerCm: null,        // calibration, in stage pixels of the current stage width...
    calibWidth: null,     // ...measured at this stage width
    nextId: 1,
    bgToken: 0,           // bumped on every background change, so a late-loading one cannot win
    calibrating: false,
  };
  const SHADOW_HEIGHT = 0.14;  // contact shadow height relative to the item's height
  const MIN_W = 0.03;
  const SNAPSHOT_MAX = 2560;  // longest side of the snapshot PNG, px
  const MAX_W = 3;

  function say(text, isError) {
    message.textContent = text;
    message.classList.toggle("error", Boolean(isError));
  }

  function stageSize() {
    const r = stage.getBoundingClientRect();
    return { w: r.width, h: r.height, left: r.left, top: r.top };
  }

  // ---- background: sample room, uploaded photo or camera ----------------------------------------------------------

  function setAspect(width, height) {
    if (width > 0 && height > 0) {
      stage.style.aspectRatio = width + " / " + height;
      stage.style.setProperty("--aspect", String(width / height));  // keeps the whole stage on screen (CSS)
    }
    layoutAll();
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
  function showPhoto(src, label) {
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
      setAspect(img.naturalWidth, img.naturalHeight);
      if (label) say(label);
    };
    img.onerror = () => {
      release();
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
    el.dataset.x = item.x.toFixed(4);
    el.dataset.y = item.y.toFixed(4);
    el.dataset.w = item.w.toFixed(4);
    el.dataset.rot = item.rot.toFixed(1);
    el.dataset.flip = item.flip ? "1" : "0";
  }

  function layoutAll() {
    state.items.forEach(layout);
  }

  function select(item) {
    state.selected = item;
    state.items.forEach((it) => it.el.classList.toggle("selected", it === item));
  }

  // Real size in cm along the cut-out's width (width or diameter) or height, when the shop gives one.
  function realSize(product) {
    const d = product.dimensions || {};
    if (d.width_cm) return { cm: d.width_cm, along: "width" };
    if (d.diameter_cm) return { cm: d.diameter_cm, along: "width" };
    if (d.height_cm) return { cm: d.height_cm, along: "height" };
    return null;
  }

  // Before calibration, size products as if the view were ~3.5 m wide, so a cup starts smaller than a bed.
  const ASSUMED_VIEW_CM = 350;
  const TYPICAL_WIDTH_CM = {
    chair: 50, couch: 200, bed: 150, vase: 15, bowl: 20, cup: 9, "wine-glass": 8, "potted-plant": 25,
  };

  function initialWidth(product, aspect) {
    const size = realSize(product);
    let cm = TYPICAL_WIDTH_CM[product.class] || 60;
    if (size) cm = size.along === "width" ? size.cm : size.cm / aspect;
    return Math.min(0.9, Math.max(0.04, cm / ASSUMED_VIEW_CM));
  }

  function snapToScale(item) {
    const size = realSize(item.product);
    if (!size || !state.pxPerCm) return false;
    const s = stageSize();
    const pxPerCm = state.pxPerCm * (s.w / state.calibWidth);
    const widthPx = size.along === "width" ? size.cm * pxPerCm : (size.cm * pxPerCm) / item.aspect;
    item.w = Math.min(MAX_W, Math.max(0.005, widthPx / s.w));
    item.el.classList.add("true-size");
    layout(item);
    return true;
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

  function addItem(product) {
    const img = new Image();
    img.className = "cut";
    img.alt = product.name;
    img.draggable = false;
    img.onload = () => {
      if (isBlank(img)) {
        say("No product was found in the photo of " + product.name + ", so there is nothing to place.", true);
        return;
      }
      const item = {
        id: state.nextId++, product, img, aspect: img.naturalHeight / img.naturalWidth,
        x: 0.5 + 0.08 * ((state.items.length % 3) - 1), y: 0.62, w: 0.3, rot: 0, flip: false,
      };
      item.w = initialWidth(product, item.aspect);
      const el = document.createElement("div");
      el.className = "item";
      el.tabIndex = 0;
      el.setAttribute("role", "group");
      el.setAttribute("aria-label", product.name + " (arrows move, + and - resize, r rotates, f flips)");
      el.dataset.productId = product.id;
      const shadow = document.createElement("div");
      shadow.className = "shadow";
      const resize = document.createElement("span");
      resize.className = "handle resize";
      resize.dataset.handle = "resize";
      resize.title = "Drag to resize";
      const rotate = document.createElement("span");
      rotate.className = "handle rotate";
      rotate.dataset.handle = "rotate";
      rotate.title = "Drag to rotate";
      el.append(shadow, img, resize, rotate);
      item.el = el;
      overlays.appendChild(el);
      state.items.push(item);
      bindItem(item);
      layout(item);
      select(item);
      if (snapToScale(item)) say(product.name + " is shown at its real size.");
    };
    img.onerror = () => say("The cut-out of " + product.name + " is not available (is the model loaded?).", true);
    img.src = product.cutout_url;
  }

  function removeItem(item) {
    item.el.remove();
    state.items = state.items.filter((it) => it !== item);
    select(state.items[state.items.length - 1] || null);
  }

  function scaleItem(item, factor) {
    item.w = Math.min(MAX_W, Math.max(MIN_W, item.w * factor));
    item.el.classList.remove("true-size");
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
        item.el.classList.remove("true-size");
      } else if (start[0].handle === "resize") {
        const r0 = Math.hypot(start[0].x - gesture.cx, start[0].y - gesture.cy) || 1;
        const r1 = Math.hypot(e.clientX - gesture.cx, e.clientY - gesture.cy);
        item.w = Math.min(MAX_W, Math.max(MIN_W, gesture.w * (r1 / r0)));
        item.el.classList.remove("true-size");
      } else if (start[0].handle === "rotate") {
        const a0 = Math.atan2(start[0].y - gesture.cy, start[0].x - gesture.cx);
        const a1 = Math.atan2(e.clientY - gesture.cy, e.clientX - gesture.cx);
        item.rot = gesture.rot + ((a1 - a0) * 180) / Math.PI;
      } else {
        item.x = gesture.x + (e.clientX - start[0].x) / s.w;
        item.y = gesture.y + (e.clientY - start[0].y) / s.h;
      }
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
        Delete: () => removeItem(item),
        Backspace: () => removeItem(item),
      }[e.key];
      if (!handled) return;
      e.preventDefault();
      handled();
      if (state.items.includes(item)) layout(item);
    });
    el.addEventListener("focus", () => select(item));
  }

  document.getElementById("item-controls").addEventListener("click", (e) => {
    const action = e.target.closest("button") && e.target.closest("button").dataset.action;
    const item = state.selected;
    if (!action || !item) return;
    if (action === "rotate-left") item.rot -= 15;
    if (action === "rotate-right") item.rot += 15;
    if (action === "flip") item.flip = !item.flip;
    if (action === "smaller") scaleItem(item, 1 / 1.1);
    if (action === "bigger") scaleItem(item, 1.1);
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
    state.pxPerCm = Math.hypot(line.x2 - line.x1, line.y2 - line.y1) / cm;
    state.calibWidth = stageSize().w;
    endCalibration();
    const snapped = state.items.filter(snapToScale).length;
    const unknown = state.items.length - snapped;
    say("Scale set: 1 m = " + Math.round(state.pxPerCm * 100) + " px. " + snapped + " product(s) snapped to real size"
      + (unknown ? "; " + unknown + " without known dimensions keep their size." : ".")
      + " Real size holds at the depth of the line you drew.");
  });
  document.getElementById("calib-cancel").addEventListener("click", () => { endCalibration(); say(""); });

  // ---- snapshot: compose background + products (+ shadows) into a PNG at the background's own resolution ------------

  function drawItem(ctx, item, W, H) {
    const w = item.w * W;
    const h = w * item.aspect;
    ctx.save();
    ctx.translate(item.x * W, item.y * H);
    ctx.rotate((item.rot * Math.PI) / 180);
    // Contact shadow: a soft ellipse centred on the bottom edge, as in the CSS.
    const sh = h * SHADOW_HEIGHT;
    ctx.save();
    ctx.translate(0, h / 2);
    ctx.scale(1, sh / w);
    const grad = ctx.createRadialGradient(0, 0, 0, 0, 0, w * 0.45);
    grad.addColorStop(0, "rgba(0,0,0,0.45)");
    grad.addColorStop(1, "rgba(0,0,0,0)");
    ctx.fillStyle = grad;
    ctx.beginPath();
    ctx.arc(0, 0, w * 0.45, 0, 2 * Math.PI);
    ctx.fill();
    ctx.restore();
    if (item.flip) ctx.scale(-1, 1);
    ctx.drawImage(item.img, -w / 2, -h / 2, w, h);
    ctx.restore();
  }

  document.getElementById("btn-snapshot").addEventListener("click", () => {
    const s = stageSize();
    let W = Math.round(s.w);
    let H = Math.round(s.h);
    let bg = null;
    if (state.background === "camera" && video.videoWidth) {
      bg = video; W = video.videoWidth; H = video.videoHeight;
    } else if (state.background === "photo" && photo.naturalWidth) {
      bg = photo; W = photo.naturalWidth; H = photo.naturalHeight;
    }
    // Phone photos can be 12+ MP: cap the snapshot so encoding stays quick and the file reasonable.
    const cap = Math.min(1, SNAPSHOT_MAX / Math.max(W, H));
    W = Math.round(W * cap);
    H = Math.round(H * cap);
    const canvas = document.createElement("canvas");
    canvas.width = W;
    canvas.height = H;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#f4f1ec";
    ctx.fillRect(0, 0, W, H);
    if (bg) ctx.drawImage(bg, 0, 0, W, H);
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

  // ---- products: the ones in the URL, plus a picker for more -------------------------------------------------------

  async function loadPicker() {
    try {
      const resp = await fetch(app.dataset.productsApi + "?per_page=100");
      const body = await resp.json();
      if (!body.success) throw new Error(body.error && body.error.message);
      body.products.forEach((p) => {
        const opt = document.createElement("option");
        opt.value = String(p.id);
        opt.textContent = p.name + (p.class ? " (" + p.class + ")" : "");
        picker.appendChild(opt);
      });
      picker.addEventListener("change", () => {
        const p = body.products.find((x) => String(x.id) === picker.value);
        if (p) addItem(p);
        picker.value = "";
      });
    } catch (err) {
      say("The product list could not be loaded.", true);
    }
  }

  window.addEventListener("resize", layoutAll);
  JSON.parse(app.dataset.products || "[]").forEach(addItem);
  loadPicker();
  if (rooms.length) {
    showPhoto(rooms[0]);
  } else {
    setAspect(4, 3);
  }
  if (!JSON.parse(app.dataset.products || "[]").length) {
    say("Pick a product to place, then choose a camera or a room photo.");
  }
})();
