// Follows bosun's change log across disconnects and server restarts.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { setTimeout as sleep } from "node:timers/promises";

import { cursorCompacted } from "./errors.js";
import { type Event, type EventFilterSchema, Events } from "./gen/bosun/v1/events_pb.js";
import type { Logger } from "./client.js";

const RECONNECT_FIRST_DELAY_MS = 100;
const RECONNECT_MAX_DELAY_MS = 5000;

/** What to follow: events with seq > afterSeq (0: from the oldest kept) that match filter. */
export interface WatchOptions {
  afterSeq?: bigint;
  filter?: MessageInitShape<typeof EventFilterSchema>;
  /** Ends the watch (the iteration returns) when aborted. */
  signal?: AbortSignal;
}

/**
 * An async iterable over the matching events, first the history, then live,
 * forever:
 *
 *     const watch = client.watch({ afterSeq: cursor, filter: { eventTypePrefixes: ["lesson."] } });
 *     for await (const event of watch) {
 *       handle(event);
 *       cursor = watch.cursor; // persist it to resume later
 *     }
 *
 * When the stream breaks (UNAVAILABLE: bosun restarting or unreachable, or
 * the stream ending) it reconnects with backoff (100 ms doubling to 5 s) and
 * resumes after the last seq it delivered, so no event is lost or repeated,
 * across server restarts too. A compacted cursor throws CursorCompactedError;
 * any other error throws the ConnectError. Iterate it once.
 */
export class Watch implements AsyncIterable<Event> {
  /**
   * Every matching event with seq <= cursor has been delivered: resume from
   * here. Progress messages advance it while nothing matches.
   */
  cursor: bigint;

  private readonly abort = new AbortController();
  private readonly signal: AbortSignal;

  constructor(
    private readonly events: Client<typeof Events>,
    private readonly logger: Logger,
    private readonly options: WatchOptions = {},
  ) {
    this.cursor = options.afterSeq ?? 0n;
    this.signal = options.signal ? AbortSignal.any([options.signal, this.abort.signal]) : this.abort.signal;
  }

  /** Ends the iteration. */
  cancel(): void {
    this.abort.abort();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Event, void, undefined> {
    let delay = RECONNECT_FIRST_DELAY_MS;
    while (!this.signal.aborted) {
      let why = "the stream ended";
      try {
        const stream = this.events.watch({ afterSeq: this.cursor, filter: this.options.filter }, { signal: this.signal });
        for await (const response of stream) {
          delay = RECONNECT_FIRST_DELAY_MS;
          const batch = response.events;
          if (batch.length === 0) {
            // A progress message: nothing matched up to resumeSeq.
            if (response.resumeSeq > this.cursor) this.cursor = response.resumeSeq;
            continue;
          }
          for (const [index, event] of batch.entries()) {
            this.cursor = event.seq;
            if (index === batch.length - 1 && response.resumeSeq > this.cursor) this.cursor = response.resumeSeq;
            yield event;
          }
        }
      } catch (error) {
        if (this.signal.aborted) return;
        const connectError = ConnectError.from(error);
        const compacted = cursorCompacted(connectError, this.cursor);
        if (compacted) throw compacted;
        if (connectError.code !== Code.Unavailable) throw connectError;
        why = connectError.rawMessage;
      }
      this.logger.info(`bosun: watch disconnected (${why}); resuming after seq ${this.cursor} in ${delay}ms`);
      try {
        await sleep(delay, undefined, { signal: this.signal });
      } catch {
        return; // aborted while waiting
      }
      delay = Math.min(2 * delay, RECONNECT_MAX_DELAY_MS);
    }
  }
}
