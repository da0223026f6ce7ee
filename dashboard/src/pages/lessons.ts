// Lessons: a table filtered by type, status, repo and source (the server
// filters), and the counts by type and by status as bars. Reloads when a
// lesson changes.

import {
  type Lesson,
  LessonSource,
  type LessonStats,
  LessonStatus,
} from "../../../clients/typescript/src/gen/bosun/v1/lessons_pb.js";
import { describe } from "../api.js";
import { debounce, h, replace } from "../dom.js";
import { enumLabel } from "../labels.js";
import type { Context, Page } from "./page.js";
import { sessionLink, when } from "./widgets.js";

const PAGE_SIZE = 200;

export function lessons(root: HTMLElement, { api }: Context): Page {
  const type = h("input", { type: "text", id: "lesson-type", name: "type", autocomplete: "off" });
  const repo = h("input", { type: "text", id: "lesson-repo", name: "repo", autocomplete: "off" });
  const status = select("lesson-status", LessonStatus);
  const source = select("lesson-source", LessonSource);
  const chart = h("div", { class: "charts" });
  const table = h("div", { class: "table-wrap" });
  root.append(
    h(
      "form",
      { class: "toolbar", "aria-label": "Filter lessons", onsubmit: (event: Event) => event.preventDefault() },
      h("label", { for: "lesson-type" }, "Type"),
      type,
      h("label", { for: "lesson-status" }, "Status"),
      status,
      h("label", { for: "lesson-repo" }, "Repo"),
      repo,
      h("label", { for: "lesson-source" }, "Source"),
      source,
    ),
    chart,
    table,
  );

  const load = async () => {
    try {
      const [page, stats] = await Promise.all([
        api.lessons.listLessons({
          pageSize: PAGE_SIZE,
          lessonType: type.value.trim(),
          repo: repo.value.trim(),
          status: Number(status.value),
          source: Number(source.value),
        }),
        api.lessons.getLessonStats({}),
      ]);
      replace(chart, bars("By type", stats.byType.map((c) => [c.lessonType, Number(c.count)])), bars("By status", stats.byStatus.map((c) => [enumLabel(LessonStatus, c.status), Number(c.count)])), disabled(stats));
      replace(table, lessonTable(page.lessons, page.nextPageToken !== ""));
    } catch (error) {
      replace(table, h("p", { role: "alert" }, `Cannot read lessons: ${describe(error)}`));
    }
  };
  const reload = debounce(() => void load(), 200);
  for (const control of [type, repo]) control.addEventListener("input", reload);
  for (const control of [status, source]) control.addEventListener("change", reload);
  void load();
  return {
    title: "Lessons",
    update(events) {
      if (events.some((e) => e.eventType.startsWith("lesson."))) reload();
    },
  };
}

function select(id: string, values: Record<number, string>): HTMLSelectElement {
  const options = Object.keys(values)
    .map(Number)
    .filter((value) => !Number.isNaN(value) && value !== 0);
  return h("select", { id, name: id }, h("option", { value: "0" }, "any"), options.map((value) => h("option", { value: String(value) }, enumLabel(values, value))));
}

function disabled(stats: LessonStats): HTMLElement | null {
  return stats.enabled ? null : h("p", { class: "muted" }, "Lesson recording is disabled.");
}

/** Counts as horizontal bars; each row also says its number. */
function bars(title: string, rows: [string, number][]): HTMLElement {
  const max = Math.max(1, ...rows.map(([, n]) => n));
  return h(
    "figure",
    { class: "bars" },
    h("figcaption", {}, title),
    rows.length === 0
      ? h("p", { class: "muted" }, "None yet.")
      : h(
          "ul",
          {},
          rows.map(([label, count]) =>
            h("li", {}, h("span", { class: "bar-label" }, label), bar(count / max), h("span", { class: "bar-count" }, String(count))),
          ),
        ),
  );
}

/** Sized through the CSSOM: the page's CSP allows no inline style attributes. */
function bar(fraction: number): HTMLElement {
  const element = h("span", { class: "bar", "aria-hidden": "true" });
  element.style.width = `${Math.round(fraction * 100)}%`;
  return element;
}

function lessonTable(rows: Lesson[], more: boolean): HTMLElement[] {
  if (rows.length === 0) return [h("p", { class: "empty" }, "No lesson matches these filters.")];
  return [
    h(
      "table",
      { id: "lessons-table" },
      h("thead", {}, h("tr", {}, ["#", "Recorded", "Type", "Status", "Source", "Repo", "Session", "Root cause"].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        rows.map((lesson) =>
          h(
            "tr",
            {},
            h("td", {}, String(lesson.id)),
            h("td", {}, when(lesson.createTime)),
            h("td", { class: "mono" }, lesson.lessonType),
            h("td", {}, enumLabel(LessonStatus, lesson.status)),
            h("td", {}, enumLabel(LessonSource, lesson.source)),
            h("td", {}, lesson.repo),
            h("td", {}, lesson.sessionId ? sessionLink(lesson.sessionId) : ""),
            h("td", {}, lesson.rootCause),
          ),
        ),
      ),
    ),
    ...(more ? [h("p", { class: "muted" }, `The newest ${PAGE_SIZE} are shown; narrow the filters to see older ones.`)] : []),
  ];
}
