// What the dashboard knows, kept live. It loads a snapshot (the sessions not
// finished, tasks, what needs attention) after reading the change log's head, then follows Events.Watch from that
// seq: each event updates the snapshot and tells the pages. When the stream
// breaks it resumes after the last seq it saw (backoff 100 ms to 5 s), so
// nothing is missed or repeated; if that history was compacted away it loads
// a fresh snapshot. The page itself never reloads.

import { Code, ConnectError } from "@connectrpc/connect";

import type { Event } from "../../clients/typescript/src/gen/bosun/v1/events_pb.js";
import type { AttentionItem, Session } from "../../clients/typescript/src/gen/bosun/v1/sessions_pb.js";
import type { Task } from "../../clients/typescript/src/gen/bosun/v1/tasks_pb.js";
import { allPages, type Api, describe, isRefusal } from "./api.js";

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 5000;
/** How long a burst of events is gathered before "needs attention" is read again. */
const ATTENTION_DEBOUNCE_MS = 150;

export type Connection = { state: "loading" | "live" | "reconnecting"; detail: string } | { state: "refused"; detail: string };

export class Store {
  readonly sessions = new Map<string, Session>();
  readonly tasks = new Map<bigint, Task>();
  /** Sessions.ListAttention's answer: the sessions that need a person, most urgent first. */
  attention: AttentionItem[] = [];
  attentionError = "";
  /** Every matching event with seq <= cursor has been applied. */
  cursor = 0n;
  connection: Connection = { state: "loading", detail: "" };
  /** Whether `sessions` holds the finished ones too (see loadFinished). */
  finishedLoaded = false;

  private readonly listeners = new Set<(events: Event[]) => void>();
  private readonly stop = new AbortController();

  constructor(readonly api: Api) {}

  /** `listener` runs after each change, with the events applied ([] for a fresh snapshot or a connection change). */
  subscribe(listener: (events: Event[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.stop.abort();
  }

  /** Loads the snapshot, then follows the change log until closed. Rejects only on a refused token. */
  async run(): Promise<void> {
    await this.load();
    let delay = FIRST_DELAY_MS;
    while (!this.stop.signal.aborted) {
      try {
        // A quick unary call first: the stream says nothing until an event
        // or its next progress message, but an answer here means bosun is up.
        await this.api.events.getHead({}, { signal: this.stop.signal });
        if (this.connection.state !== "live") this.setConnection({ state: "live", detail: "" });
        const stream = this.api.events.watch({ afterSeq: this.cursor }, { signal: this.stop.signal });
        for await (const response of stream) {
          delay = FIRST_DELAY_MS;
          await this.apply(response.events);
          if (response.resumeSeq > this.cursor) this.cursor = response.resumeSeq;
          if (response.events.length > 0) this.emit(response.events);
        }
        this.setConnection({ state: "reconnecting", detail: "the stream ended" });
      } catch (error) {
        if (this.stop.signal.aborted) return;
        if (isRefusal(error)) throw error;
        let detail = describe(error);
        if (ConnectError.from(error).code === Code.OutOfRange) {
          // The history after our cursor was compacted: start over from a snapshot.
          try {
            await this.load();
            continue;
          } catch (reload) {
            if (isRefusal(reload)) throw reload;
            detail = describe(reload);
          }
        }
        this.setConnection({ state: "reconnecting", detail });
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }

  private async load(): Promise<void> {
    const head = await this.api.events.getHead({});
    const sessions = await this.listSessions(false);
    if (this.finishedLoaded) sessions.push(...(await this.listSessions(true)));
    const tasks = await allPages(async (pageToken) => {
      const page = await this.api.tasks.listTasks({ pageSize: 1000, pageToken });
      return [page.tasks, page.nextPageToken];
    });
    this.sessions.clear();
    for (const session of sessions) this.sessions.set(session.id, session);
    this.tasks.clear();
    for (const task of tasks) this.tasks.set(task.id, task);
    this.cursor = head.headSeq;
    await this.loadAttention();
  }

  /**
   * Loads the finished sessions too (done or terminated), once: the board
   * starts without them. Sessions that finish while watched are kept anyway.
   */
  async loadFinished(): Promise<void> {
    if (this.finishedLoaded) return;
    for (const session of await this.listSessions(true)) this.sessions.set(session.id, session);
    this.finishedLoaded = true;
    this.emit([]);
  }

  private listSessions(finished: boolean): Promise<Session[]> {
    return allPages(async (pageToken) => {
      const page = await this.api.sessions.listSessions({ finished, pageSize: 1000, pageToken });
      return [page.sessions, page.nextPageToken];
    });
  }

  private attentionTimer: ReturnType<typeof setTimeout> | undefined;

  /** Reads "needs attention" again after a burst of changes to sessions, reactions or tasks. */
  private scheduleAttention(): void {
    clearTimeout(this.attentionTimer);
    this.attentionTimer = setTimeout(() => void this.loadAttention(), ATTENTION_DEBOUNCE_MS);
  }

  private async loadAttention(): Promise<void> {
    try {
      this.attention = (await this.api.sessions.listAttention({})).items;
      this.attentionError = "";
    } catch (error) {
      this.attentionError = describe(error);
    }
    this.emit([]);
  }

  /**
   * Applies one Watch batch. Event payloads carry the stored entity alone,
   * and a session's display status, pull request and checks are derived on
   * read, so every session an event touches is read again with GetSession.
   */
  private async apply(events: Event[]): Promise<void> {
    const touched = new Set<string>();
    for (const event of events) {
      if (event.payload.case === "task") this.tasks.set(event.payload.value.id, event.payload.value);
      if (event.sessionId) touched.add(event.sessionId);
      if (event.payload.case === "session") touched.add(event.payload.value.id);
    }
    await Promise.all([...touched].map((id) => this.refreshSession(id)));
    if (touched.size > 0 || events.some((e) => e.payload.case === "task")) this.scheduleAttention();
    // Only now: a batch that failed half-way is read again on resume.
    const last = events.at(-1);
    if (last) this.cursor = last.seq;
  }

  private async refreshSession(id: string): Promise<void> {
    try {
      this.sessions.set(id, await this.api.sessions.getSession({ sessionId: id }));
    } catch (error) {
      if (ConnectError.from(error).code !== Code.NotFound) throw error;
      this.sessions.delete(id);
    }
  }

  private setConnection(connection: Connection): void {
    this.connection = connection;
    this.emit([]);
  }

  private emit(events: Event[]): void {
    for (const listener of this.listeners) listener(events);
  }
}
