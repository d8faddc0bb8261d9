// Sightline dashboard: what every page shares — the session (and the way to the login page
// when there is none or it ended), the navigation with the caller's role, API calls with the
// session's CSRF token, the event stream, and times in the browser's time zone.
"use strict";
(function () {
  const RANK = { viewer: 0, operator: 1, admin: 2 };
  const PAGES = [
    { path: "/", title: "Overview" },
    { path: "/live", title: "Live" },
    { path: "/map", title: "Map" },
    { path: "/gallery", title: "Gallery", role: "operator" },
  ];
  let session = null;

  function toLogin() {
    const here = window.location.pathname + window.location.search;
    window.location.replace("/login?next=" + encodeURIComponent(here));
  }

  // Element builder: el("div", {class: "x", onclick: f}, "text", child, …).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "class") e.className = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function can(role) {
    return session !== null && RANK[session.role] >= RANK[role];
  }

  // An API call; a 401 (no session, expired, revoked) goes to the login page.
  async function api(method, path, body, contentType) {
    const headers = {};
    if (method !== "GET" && session && session.csrf) headers["x-csrf-token"] = session.csrf;
    if (body !== undefined && body !== null) headers["content-type"] = contentType || "application/json";
    const r = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined || body === null ? undefined
        : (contentType ? body : JSON.stringify(body)),
    });
    if (r.status === 401 && session && session.auth) {
      toLogin();
      throw new Error("the session ended");
    }
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = { error: text }; }
    return { status: r.status, ok: r.ok, data };
  }

  function header(current) {
    const nav = el("nav", { "aria-label": "pages" },
      PAGES.filter((p) => !p.role || can(p.role)).map((p) =>
        el("a", { href: p.path, "aria-current": p.path === current ? "page" : null }, p.title)));
    const who = el("div", { class: "who" },
      el("span", { id: "live-dot", title: "live updates", role: "img", "aria-label": "live updates" }),
      session.auth ? el("span", { id: "who" }, `${session.name} · ${session.role}`)
        : el("span", { id: "who" }, "local (no login)"),
      session.auth ? el("button", { id: "logout", type: "button", onclick: logout }, "Log out") : null);
    document.body.prepend(el("header", { class: "top" }, el("span", { class: "brand" }, "Sightline"), nav, who));
  }

  async function logout() {
    await api("POST", "/api/v1/logout").catch(() => {});
    toLogin();
  }

  // The session, the header; null (and on the way to /login) without a session.
  async function start(current) {
    const r = await fetch("/api/v1/session", { credentials: "same-origin" }).catch(() => null);
    if (r && r.status === 401) { toLogin(); return null; }
    session = r && r.ok ? await r.json() : { name: "?", role: "viewer", csrf: null, auth: true };
    header(current);
    for (const e of document.querySelectorAll("[data-role]")) {
      if (!can(e.dataset.role)) e.remove();
    }
    // A session that ends (expired, logged out elsewhere, its token revoked) sends the page to
    // the login within a minute, or at once when the tab is shown again.
    if (session.auth) {
      const check = async () => {
        const s = await fetch("/api/v1/session", { credentials: "same-origin" }).catch(() => null);
        if (s && s.status === 401) toLogin();
      };
      setInterval(check, 60000);
      document.addEventListener("visibilitychange", () => { if (!document.hidden) check(); });
    }
    return session;
  }

  // The event stream: handlers[kind](event, sseId) for event kinds, handlers.cameras(list)
  // for the cameras' state, handlers.open() each time it (re)connects (load snapshots then).
  // A stream refused for want of a session goes to the login page.
  function events(query, handlers) {
    let source = null;
    const dot = () => document.getElementById("live-dot");
    function connect() {
      source = new EventSource("/api/v1/events" + (query ? "?" + query : ""), { withCredentials: true });
      source.onopen = () => {
        if (dot()) dot().className = "on";
        if (handlers.open) handlers.open();
      };
      source.onmessage = (m) => {
        let ev;
        try { ev = JSON.parse(m.data); } catch (_) { return; }
        const h = handlers[ev.kind] || handlers.any;
        if (h) h(ev, m.lastEventId);
      };
      source.addEventListener("cameras", (m) => {
        if (handlers.cameras) handlers.cameras(JSON.parse(m.data).cameras);
      });
      source.addEventListener("missed", () => { if (handlers.open) handlers.open(); });
      source.onerror = async () => {
        if (dot()) dot().className = "";
        if (source.readyState !== EventSource.CLOSED) return; // the browser reconnects
        const s = await fetch("/api/v1/session", { credentials: "same-origin" }).catch(() => null);
        if (s && s.status === 401) { toLogin(); return; }
        setTimeout(connect, 2000);
      };
    }
    connect();
    return { close: () => source && source.close() };
  }

  // Times in the browser's time zone.
  function time(utc) {
    if (!utc) return "—";
    const d = new Date(utc);
    if (isNaN(d)) return utc;
    const today = new Date().toDateString() === d.toDateString();
    return today ? d.toLocaleTimeString() : d.toLocaleString();
  }

  function ago(utc) {
    if (!utc) return "";
    const s = Math.max(0, (Date.now() - Date.parse(utc)) / 1000);
    if (s < 60) return `${Math.round(s)} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  }

  // Calls f at most once per `ms` (and once more after, when asked meanwhile).
  function coalesce(f, ms) {
    let running = false, again = false, last = 0;
    return async function run() {
      if (running) { again = true; return; }
      const wait = last + ms - Date.now();
      if (wait > 0) { running = true; await new Promise((r) => setTimeout(r, wait)); running = false; }
      running = true;
      try { await f(); } catch (e) { console.warn(e); }
      last = Date.now();
      running = false;
      if (again) { again = false; run(); }
    };
  }

  // The floor map's colour of a global id (mapview's palette).
  const PALETTE = ["#e6194b", "#3cb44b", "#0082c8", "#f58230", "#911eb4", "#46f0f0", "#f032e6", "#808000"];
  function colourOf(id) { return PALETTE[Number(id) % PALETTE.length]; }

  window.Sightline = { start, api, events, el, can, time, ago, coalesce, colourOf, session: () => session };
})();
