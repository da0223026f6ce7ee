// How values read on the page: enum names as words, a tone per status (the
// colour only repeats what the word says), relative times.

import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

import { DisplayStatus, PullRequestCiState, type Session, SessionState } from "../../clients/typescript/src/gen/bosun/v1/sessions_pb.js";

/** "NEEDS_INPUT" -> "needs input"; 0 (unspecified) -> "". */
export function enumLabel(values: Record<number, string>, value: number): string {
  if (value === 0) return "";
  const name = values[value];
  return name ? name.toLowerCase().replace(/_/g, " ").replace(/\bci\b/g, "CI").replace(/\bpr\b/g, "PR") : String(value);
}

/** "needs input" -> "Needs input". */
export function sentence(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A stable key for attributes and tests: "NEEDS_INPUT" -> "needs_input". */
export function enumKey(values: Record<number, string>, value: number): string {
  return (values[value] ?? String(value)).toLowerCase();
}

export type Tone = "bad" | "warn" | "good" | "busy" | "quiet";

const STATUS_TONES: Partial<Record<DisplayStatus, Tone>> = {
  [DisplayStatus.NEEDS_INPUT]: "bad",
  [DisplayStatus.STUCK]: "bad",
  [DisplayStatus.CI_FAILED]: "bad",
  [DisplayStatus.ERRORED]: "bad",
  [DisplayStatus.CHANGES_REQUESTED]: "warn",
  [DisplayStatus.DETECTING]: "warn",
  [DisplayStatus.MERGEABLE]: "good",
  [DisplayStatus.APPROVED]: "good",
  [DisplayStatus.MERGED]: "good",
  [DisplayStatus.DONE]: "good",
  [DisplayStatus.WORKING]: "busy",
  [DisplayStatus.SPAWNING]: "busy",
  [DisplayStatus.PR_OPEN]: "busy",
  [DisplayStatus.REVIEW_PENDING]: "busy",
  [DisplayStatus.DRAFT]: "busy",
};

export function statusTone(status: DisplayStatus): Tone {
  return STATUS_TONES[status] ?? "quiet";
}

/** The board's column order: what needs a person first, finished last. */
export const BOARD_ORDER: DisplayStatus[] = [
  DisplayStatus.NEEDS_INPUT,
  DisplayStatus.STUCK,
  DisplayStatus.CI_FAILED,
  DisplayStatus.CHANGES_REQUESTED,
  DisplayStatus.MERGEABLE,
  DisplayStatus.APPROVED,
  DisplayStatus.REVIEW_PENDING,
  DisplayStatus.PR_OPEN,
  DisplayStatus.DRAFT,
  DisplayStatus.WORKING,
  DisplayStatus.DETECTING,
  DisplayStatus.SPAWNING,
  DisplayStatus.IDLE,
  DisplayStatus.MERGED,
  DisplayStatus.DONE,
  DisplayStatus.ERRORED,
  DisplayStatus.KILLED,
  DisplayStatus.CLEANUP,
  DisplayStatus.UNSPECIFIED,
];

export function statusLabel(status: DisplayStatus): string {
  return enumLabel(DisplayStatus, status) || "unknown";
}

/** Done or terminated: shown on the board only with "finished" ticked. */
export function isFinished(session: Session): boolean {
  return session.state === SessionState.DONE || session.state === SessionState.TERMINATED;
}

export function ciTone(state: PullRequestCiState): Tone {
  switch (state) {
    case PullRequestCiState.FAILING:
      return "bad";
    case PullRequestCiState.PASSING:
      return "good";
    case PullRequestCiState.PENDING:
      return "busy";
    default:
      return "quiet";
  }
}

/** A glyph that says the same as the tone, for readers who do not see colour. */
export function toneMark(tone: Tone): string {
  switch (tone) {
    case "bad":
      return "✖";
    case "warn":
      return "▲";
    case "good":
      return "✔";
    case "busy":
      return "●";
    default:
      return "○";
  }
}

export function date(timestamp: Timestamp | undefined): Date | undefined {
  if (!timestamp || (timestamp.seconds === 0n && timestamp.nanos === 0)) return undefined;
  return timestampDate(timestamp);
}

/** "12s ago", "5m ago", "3h ago", "2d ago"; "" for no time. */
export function ago(timestamp: Timestamp | undefined, now = Date.now()): string {
  const when = date(timestamp);
  if (!when) return "";
  const seconds = Math.max(0, Math.round((now - when.getTime()) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

/** An ISO time for title/datetime attributes. */
export function iso(timestamp: Timestamp | undefined): string {
  return date(timestamp)?.toISOString() ?? "";
}

/** The session's latest activity, as bosun computes it. */
export function lastActivity(session: Session): Timestamp | undefined {
  return session.lastActivityTime;
}
