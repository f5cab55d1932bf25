// "Add your own product" on the room view: a product page address or a photo goes to POST /api/intake; the
// pictures found come back as thumbnails; the chosen one's cut-out is placed with window.RoomFit.addProduct at the
// size the page states. A failed request changes nothing in the room. No inline code (CSP).
"use strict";
(function () {
  const app = document.getElementById("room-app");
  const panel = document.getElementById("own-panel");
  if (!app || !panel || !window.RoomFit) return;

  const api = app.dataset.intakeApi;
  const [button, urlForm, urlInput, fileForm, fileInput, widthInput, status, choose, nameEl, sizeEl, list] = [
    "btn-own", "own-url-form", "own-url", "own-file-form", "own-file", "own-width", "own-status", "own-choose",
    "own-name", "own-size", "own-pictures"].map((id) => document.getElementById(id));
  const submits = panel.querySelectorAll("button[type=submit]");

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  }

  function toggle(open) {
    panel.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) urlInput.focus();
  }

  function busy(on) {
    submits.forEach((b) => { b.disabled = on; });
    panel.setAttribute("aria-busy", String(on));
  }

  function sizeText(product) {
    return product.size_known ? "(" + window.RoomFit.sizeText(product) + ")"
      : "(size unknown: calibrate the room, then resize it)";
  }

  // One request to the intake; resolves to the product, or shows the server's message and resolves to null.
  async function send(init) {
    busy(true);
    try {
      const resp = await fetch(api, Object.assign({ method: "POST", credentials: "omit" }, init));
      let body = null;
      try { body = await resp.json(); } catch (e) { body = null; }
      if (!resp.ok || !body || !body.success) {
        const why = body && body.error ? body.error.message : "the server answered " + resp.status;
        say("That did not work: " + why + ". Your room is unchanged.", true);
        return null;
      }
      return body.product;
    } catch (err) {
      say("The request could not be sent (are you offline?). Your room is unchanged.", true);
      return null;
    } finally {
      busy(false);
    }
  }

  function meta(product) {
    return {
      name: product.title || "Your product",
      class: null,
      dimensions: product.dimensions || {},
      cutout_margin: product.cutout_margin || 0,
    };
  }

  async function place(product, picture) {
    say("Cutting out the product…");
    const item = await window.RoomFit.addProduct(picture.cutout_url, meta(product));
    if (item) {
      const size = !product.size_known ? ": size unknown, so it is drawn at a typical size."
        : product.source_url ? " with the size the shop states." : " with the width you gave.";
      say((product.title || "Your product") + " is in the room" + size);
    }
  }

  function show(product) {
    nameEl.textContent = product.title || "Your product";
    sizeEl.textContent = sizeText(product);
    list.textContent = "";
    product.pictures.forEach((picture, n) => {
      const b = Object.assign(document.createElement("button"), { type: "button", className: "pick" });
      b.dataset.picture = String(picture.index);
      b.appendChild(Object.assign(new Image(), {
        src: picture.url, alt: "Picture " + (n + 1) + " of " + (product.title || "your product"),
      }));
      b.addEventListener("click", () => place(product, picture));
      list.appendChild(document.createElement("li")).appendChild(b);
    });
    choose.hidden = false;
  }

  urlForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const url = urlInput.value.trim();
    if (!url) return;
    say("Fetching the page and its pictures…");
    const product = await send({ headers: { "Content-Type": "application/json" }, body: JSON.stringify({ url }) });
    if (!product) return;
    show(product);
    if (product.pictures.length === 1) {
      await place(product, product.pictures[0]);
    } else {
      say("Found " + product.pictures.length + " pictures: choose one.");
      list.querySelector("button").focus();
    }
  });

  fileForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!fileInput.files.length) {
      say("Choose a photo first.", true);
      return;
    }
    const form = new FormData();
    form.append("image", fileInput.files[0]);
    if (widthInput.value) form.append("width_cm", widthInput.value);
    say("Uploading the photo…");
    const product = await send({ body: form });
    if (!product) return;
    show(product);
    await place(product, product.pictures[0]);
  });

  button.addEventListener("click", () => toggle(panel.hidden));
  panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { toggle(false); button.focus(); }
  });
  if (new URLSearchParams(window.location.search).get("add") === "own") toggle(true);
})();
