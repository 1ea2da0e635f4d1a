(() => {
  "use strict";
  const body = document.body;
  const server = body.dataset.server;
  let generation = Number(body.dataset.generation);
  const variants = body.dataset.variants;

  // Each frame takes the height of its email, so neither frame scrolls inside itself (a
  // scrollbar would take width from the 600 px and 375 px the email is meant to get).
  function fit(frame) {
    try {
      const doc = frame.contentDocument;
      if (!doc || !doc.documentElement) return;
      const height = Math.max(doc.documentElement.scrollHeight, doc.body ? doc.body.scrollHeight : 0);
      if (height > 0) frame.style.height = height + "px";
    } catch (e) { /* not loaded yet */ }
  }
  const frames = [...document.querySelectorAll("iframe.email")];
  frames.forEach(frame => { frame.addEventListener("load", () => fit(frame)); fit(frame); });

  function apply(state) {
    if (state.server !== server || (state.ok && state.variants.join(",") !== variants)) {
      location.reload();  // another server, or other variants: start afresh
      return;
    }
    for (const [id, html] of Object.entries(state.sections || {})) {
      const element = document.getElementById(id);
      if (element) element.innerHTML = html;
    }
    body.classList.toggle("failed", !state.ok);
    if (state.ok) {
      frames.forEach(frame => {
        const hash = state.frames[frame.dataset.variant];
        if (hash && hash !== frame.dataset.hash) {
          frame.dataset.hash = hash;
          frame.src = `/variant/${frame.dataset.variant}.html?h=${hash}`;
        }
      });
    }
    generation = state.generation;
    body.dataset.generation = String(generation);
  }

  async function poll() {
    try {
      const response = await fetch(`/state?since=${generation}`, {cache: "no-store"});
      const state = await response.json();
      body.classList.remove("offline");
      if (state.server !== server || state.generation !== generation) apply(state);
    } catch (e) {
      body.classList.add("offline");
    }
    setTimeout(poll, 300);
  }
  setTimeout(poll, 300);
})();
