// The dashboard's entry: asks for a token when bosun wants one (kept in
// sessionStorage), then shows the page the URL's hash names and keeps it
// live. Routes: #/ (board), #/attention, #/pipeline, #/lessons,
// #/session/<id>.

import { type Api, connect, describe, isRefusal, storedToken, storeToken } from "./api.js";
import { h, replace } from "./dom.js";
import { attention } from "./pages/attention.js";
import { board } from "./pages/board.js";
import { lessons } from "./pages/lessons.js";
import type { Context, Page } from "./pages/page.js";
import { pipeline } from "./pages/pipeline.js";
import { sessionPage } from "./pages/session.js";
import { Store } from "./store.js";

/** How often relative times ("5s ago") are redrawn. */
const CLOCK_MS = 15_000;

const app = document.getElementById("app") as HTMLElement;

/** Ends the open dashboard (its stream, listeners and clock) before another starts or on sign-out. */
let closeCurrent = () => {};

const ROUTES: { hash: string; label: string }[] = [
  { hash: "#/", label: "Board" },
  { hash: "#/attention", label: "Needs attention" },
  { hash: "#/pipeline", label: "Pipeline" },
  { hash: "#/lessons", label: "Lessons" },
];

async function start(): Promise<void> {
  const token = storedToken();
  const api = connect(token);
  try {
    await api.events.getHead({});
  } catch (error) {
    if (isRefusal(error)) return login(token ? `bosun refused the saved token (${describe(error)}).` : "");
    return failed(error);
  }
  open(api, token !== "");
}

function login(message: string): void {
  closeCurrent();
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "off", required: true, spellcheck: false });
  const error = h("p", { class: "error", role: "alert", id: "login-error" }, message);
  const submit = async (event: Event) => {
    event.preventDefault();
    const token = input.value.trim();
    error.textContent = "Checking…";
    try {
      const api = connect(token);
      await api.events.getHead({});
      storeToken(token);
      open(api, true);
    } catch (err) {
      error.textContent = isRefusal(err) ? `bosun refused this token (${describe(err)}).` : `bosun did not answer (${describe(err)}).`;
    }
  };
  document.title = "bosun · sign in";
  replace(
    app,
    h(
      "main",
      { class: "login" },
      h("h1", {}, "bosun"),
      h(
        "form",
        { onsubmit: submit, "aria-describedby": "login-help" },
        h("label", { for: "token" }, "Access token"),
        input,
        h("p", { id: "login-help", class: "muted" }, "A bosun token (the read role is enough). It is kept in this tab only."),
        h("button", { type: "submit" }, "Open dashboard"),
        error,
      ),
    ),
  );
  input.focus();
}

function failed(error: unknown): void {
  closeCurrent();
  replace(app, h("main", { class: "login" }, h("h1", {}, "bosun"), h("p", { role: "alert" }, `bosun did not answer: ${describe(error)}`), h("button", { type: "button", onclick: () => void start() }, "Try again")));
}

function open(api: Api, signedIn: boolean): void {
  closeCurrent();
  const store = new Store(api);
  const stop = new AbortController();
  closeCurrent = () => {
    stop.abort();
    store.close();
  };
  const context: Context = { api, store };
  const status = h("span", { class: "conn", role: "status", id: "connection" }, "connecting…");
  const attentionCount = h("span", { class: "count", id: "attention-count" }, "0");
  const links = ROUTES.map((route) => h("a", { href: route.hash }, route.label, route.hash === "#/attention" ? [" ", attentionCount] : null));
  const signOut = signedIn
    ? h("button", {
        type: "button",
        class: "link",
        onclick: () => {
          closeCurrent();
          storeToken("");
          login("");
        },
      }, "Sign out")
    : null;
  const title = h("h1", { id: "page-title" });
  const main = h("main", { id: "page" });
  replace(app, h("header", {}, h("a", { href: "#/", class: "brand" }, "bosun"), h("nav", { "aria-label": "Pages" }, links), status, signOut), h("div", { class: "content" }, title, main));

  let page: Page | undefined;
  const route = () => {
    page?.dispose?.();
    main.replaceChildren();
    const hash = location.hash || "#/";
    const [path] = hash.split("?");
    const session = path.match(/^#\/session\/(.+)$/);
    if (session) page = sessionPage(main, context, decodeURIComponent(session[1]));
    else if (path === "#/attention") page = attention(main, context);
    else if (path === "#/pipeline") page = pipeline(main, context);
    else if (path === "#/lessons") page = lessons(main, context);
    else page = board(main, context);
    title.textContent = page.title;
    document.title = `bosun · ${page.title}`;
    for (const link of links) {
      if (link.getAttribute("href") === path || (path === "#" && link.getAttribute("href") === "#/")) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  };
  const showStatus = () => {
    const { state, detail } = store.connection;
    status.textContent = state === "live" ? "● live" : state === "loading" ? "loading…" : `○ ${state}`;
    status.title = detail;
    status.dataset.state = state;
    attentionCount.textContent = String(store.attention.length);
  };
  store.subscribe((events) => {
    showStatus();
    page?.update(events);
  });
  window.addEventListener("hashchange", route, { signal: stop.signal });
  const clock = window.setInterval(() => page?.update([]), CLOCK_MS);
  stop.signal.addEventListener("abort", () => window.clearInterval(clock));
  route();
  store.run().catch((error) => {
    closeCurrent();
    if (isRefusal(error)) login(`bosun refused the token (${describe(error)}).`);
    else failed(error);
  });
}

void start();
