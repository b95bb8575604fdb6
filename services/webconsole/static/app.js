// Gate web console: a little progressive enhancement over server-rendered
// pages. Everything works without it; with it, pages follow changes live,
// address fields are checked as they are typed, join strings copy with a
// button and deletions ask first.
"use strict";

(function () {
  const live = document.body.dataset.livePage;

  // Live updates: the controller says when anything changed; the page
  // fetches itself again and swaps the regions marked data-live whose
  // HTML changed, except a region holding the focus, a field being
  // edited or a selection. A page in a hidden tab closes its stream
  // (each holds a connection) and catches up when shown again.
  let busy = false, again = false;
  const lastHTML = new Map();
  function edited(root) {
    const fields = [...root.querySelectorAll("input, textarea, select")];
    if (root.matches && root.matches("input, textarea, select")) fields.push(root);
    for (const f of fields) {
      if (f.type === "hidden") continue;
      if (f.tagName === "SELECT") {
        const def = Math.max(0, [...f.options].findIndex((o) => o.defaultSelected));
        if (f.options.length && f.selectedIndex !== def) return true;
        continue;
      }
      if ((f.type === "checkbox" || f.type === "radio") ? f.checked !== f.defaultChecked : f.value !== f.defaultValue) return true;
    }
    return false;
  }
  function busyWith(el) {
    if (el.contains(document.activeElement) && document.activeElement !== document.body) return true;
    const sel = window.getSelection();
    if (sel && !sel.isCollapsed && sel.anchorNode && el.contains(sel.anchorNode)) return true;
    return edited(el);
  }
  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const res = await fetch(live, { headers: { "X-Gate-Live": "1" }, credentials: "same-origin", cache: "no-store" });
      if (res.status === 401) { signedOut(); return; }
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      for (const fresh of doc.querySelectorAll("[data-live][id]")) {
        const old = document.getElementById(fresh.id);
        if (!old || lastHTML.get(fresh.id) === fresh.outerHTML || busyWith(old)) continue;
        old.replaceWith(document.importNode(fresh, true));
        lastHTML.set(fresh.id, fresh.outerHTML);
      }
      setState("Up to date");
    } catch (e) {
      setState("Reconnecting…");
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }
  // A session that ended sends the page to sign in, unless something is
  // being edited there: then it says so and leaves the edit be.
  function signedOut() {
    if (edited(document.body)) {
      const el = document.getElementById("live-state");
      el.setAttribute("role", "alert");
      el.textContent = "Your session ended: sign in again in another tab before saving, or your changes will be refused.";
      el.classList.add("ended");
      return;
    }
    location.assign("/signin?next=" + encodeURIComponent(location.pathname + location.search));
  }
  function setState(text) {
    const el = document.getElementById("live-state");
    if (el && !el.classList.contains("ended") && el.textContent !== text) el.textContent = text;
  }
  let es = null;
  function connect() {
    if (es || !window.EventSource) return;
    es = new EventSource("/events");
    es.addEventListener("change", refresh);
    es.addEventListener("tick", refresh);
    es.addEventListener("signedout", () => { disconnect(); signedOut(); });
    es.onerror = () => setState("Reconnecting…");
  }
  function disconnect() { if (es) { es.close(); es = null; } }
  if (live) {
    for (const el of document.querySelectorAll("[data-live][id]")) lastHTML.set(el.id, el.outerHTML);
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) { disconnect(); } else { connect(); refresh(); }
    });
    if (!document.hidden) connect();
  }

  // Deletions and removals ask first.
  document.addEventListener("submit", (ev) => {
    const msg = ev.target.dataset && ev.target.dataset.confirm;
    if (msg && !window.confirm(msg)) ev.preventDefault();
  });

  // Copy buttons.
  document.addEventListener("click", async (ev) => {
    const btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    const field = document.getElementById(btn.dataset.copy);
    if (!field) return;
    try {
      await navigator.clipboard.writeText(field.value);
    } catch (e) {
      field.select();
      document.execCommand("copy");
    }
    btn.textContent = "Copied";
    setTimeout(() => { btn.textContent = "Copy"; }, 2000);
  });

  // Fields checked as they are typed: an address by the controller's own
  // check (data-check-url), a CIDR by its form.
  const timers = new WeakMap();
  function show(input, problem) {
    const msg = document.getElementById(input.getAttribute("aria-describedby"));
    input.setAttribute("aria-invalid", problem ? "true" : "false");
    if (msg) { msg.textContent = problem || ""; msg.classList.toggle("bad", !!problem); }
  }
  const cidr = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/([0-9]|[12]\d|3[0-2])$/;
  document.addEventListener("input", (ev) => {
    const input = ev.target;
    if (input.dataset.check === "cidr") {
      const v = input.value.trim();
      show(input, v === "" || cidr.test(v) ? "" : "want a CIDR like 10.0.0.0/16");
      return;
    }
    const url = input.dataset.checkUrl;
    if (!url) return;
    clearTimeout(timers.get(input));
    timers.set(input, setTimeout(async () => {
      const v = input.value.trim();
      if (v === "" || v === input.defaultValue) { show(input, ""); return; }
      try {
        const res = await fetch(url + "?address=" + encodeURIComponent(v), { credentials: "same-origin" });
        if (!res.ok) return;
        const ans = await res.json();
        if (input.value.trim() === v) show(input, ans.ok ? "" : ans.problem);
      } catch (e) { /* checked again on submit */ }
    }, 250));
  });
})();
