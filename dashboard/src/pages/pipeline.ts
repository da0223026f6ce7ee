// The pipeline: tasks by stage, held tasks first with their reason, and each
// task's last gate result with the reason of every check.

import { Stage } from "../../../clients/typescript/src/gen/bosun/v1/common_pb.js";
import { GateStatus, HoldReason, type Task } from "../../../clients/typescript/src/gen/bosun/v1/tasks_pb.js";
import { h, replace } from "../dom.js";
import { enumKey, enumLabel, sentence, type Tone } from "../labels.js";
import type { Context, Page } from "./page.js";
import { badge, sessionLink, when } from "./widgets.js";

const STAGES = [Stage.ANALYSIS, Stage.DEVELOPMENT, Stage.REVIEW, Stage.TESTING, Stage.DEPLOY, Stage.DONE];

const GATE_TONES: Record<number, Tone> = {
  [GateStatus.PASSED]: "good",
  [GateStatus.FAILED]: "bad",
  [GateStatus.PENDING]: "busy",
};

export function pipeline(root: HTMLElement, { store }: Context): Page {
  const body = h("div", {});
  root.append(body);
  const render = () => {
    const tasks = [...store.tasks.values()].sort((a, b) => (a.id < b.id ? 1 : -1));
    const held = tasks.filter((t) => t.held);
    replace(
      body,
      h(
        "section",
        { "aria-labelledby": "held-title", class: "held" },
        h("h2", { id: "held-title" }, "Held ", h("span", { class: "count" }, String(held.length))),
        held.length === 0 ? h("p", { class: "muted" }, "No task is held.") : h("ul", { class: "cards" }, held.map(taskCard)),
      ),
      h(
        "div",
        { class: "stages" },
        STAGES.map((stage) => {
          const inStage = tasks.filter((t) => t.stage === stage && !t.held);
          const id = `stage-${stage}`;
          return h(
            "section",
            { class: "stage", "data-stage": enumKey(Stage, stage), "aria-labelledby": id },
            h("h2", { id }, sentence(enumLabel(Stage, stage)), " ", h("span", { class: "count" }, String(inStage.length))),
            inStage.length === 0 ? h("p", { class: "muted" }, "—") : h("ul", { class: "cards" }, inStage.map(taskCard)),
          );
        }),
      ),
    );
  };
  render();
  return { title: "Pipeline", update: render };
}

function taskCard(task: Task): HTMLElement {
  const gate = task.lastGate;
  return h(
    "li",
    { class: `card ${task.held ? "tone-bad" : "tone-quiet"}`, "data-task-id": task.id.toString() },
    h("div", { class: "card-head" }, h("strong", {}, `#${task.id}`), h("span", { class: "project" }, task.projectId)),
    h("div", {}, task.title || task.trackerIssueId || task.workItemId),
    task.held
      ? h("div", { class: "hold" }, badge("bad", `held: ${enumLabel(HoldReason, task.holdReason)}`), task.holdDetail ? ` ${task.holdDetail}` : "", " · ", when(task.holdTime))
      : null,
    h("div", { class: "muted" }, `${enumLabel(Stage, task.stage)} since `, when(task.stageEnterTime), task.rollbackCount > 0 ? ` · ${task.rollbackCount} rollbacks` : ""),
    task.branch ? h("div", { class: "branch mono" }, task.branch) : null,
    task.stageSessionId ? h("div", {}, "session ", sessionLink(task.stageSessionId), task.stageSessionActive ? "" : " (ended)") : null,
    gate
      ? h(
          "details",
          { "data-key": `gate-${task.id}` },
          h("summary", {}, `gate ${gate.gate}: `, badge(GATE_TONES[gate.status] ?? "quiet", enumLabel(GateStatus, gate.status) || "unknown")),
          h(
            "ul",
            { class: "gate-checks" },
            gate.checks.map((check) => h("li", {}, badge(GATE_TONES[check.status] ?? "quiet", enumLabel(GateStatus, check.status)), ` ${check.name}`, check.reason ? ` — ${check.reason}` : "")),
          ),
        )
      : null,
  );
}
