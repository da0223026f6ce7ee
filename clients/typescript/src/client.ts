// Connecting to bosun: one HTTP/2 connection (gRPC), a client for every
// service, the token on every call, and the quiet lesson recorder.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Client, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import type { SecureClientSessionOptions } from "node:http2";

import { Events } from "./gen/bosun/v1/events_pb.js";
import { type LessonSchema, Lessons, type RecordLessonResponse } from "./gen/bosun/v1/lessons_pb.js";
import { Processors } from "./gen/bosun/v1/processors_pb.js";
import { Reconciler } from "./gen/bosun/v1/reconciler_pb.js";
import { Sessions } from "./gen/bosun/v1/sessions_pb.js";
import { Tasks } from "./gen/bosun/v1/tasks_pb.js";
import { Health } from "./gen/grpc/health/v1/health_pb.js";
import { Watch, type WatchOptions } from "./watch.js";

/** How long recordLessonQuietly waits for bosun, in milliseconds. */
export const DEFAULT_QUIET_TIMEOUT_MS = 2000;

/** Where the client logs (console by default). */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

export interface ConnectOptions {
  /**
   * Sent as `authorization: Bearer <token>` on every call (bosun's
   * [[auth.tokens]]; none is needed when bosun has no tokens).
   */
  token?: string;
  /**
   * false (default): plaintext, as bosun itself serves. true: TLS with
   * Node's default roots, or your own TLS options (behind a TLS-terminating
   * proxy).
   */
  tls?: boolean | SecureClientSessionOptions;
  /** recordLessonQuietly's deadline (default DEFAULT_QUIET_TIMEOUT_MS). */
  quietTimeoutMs?: number;
  logger?: Logger;
  /** More interceptors, run after the token's. */
  interceptors?: Interceptor[];
}

/** A connection to bosun with a client for every service. */
export class BosunClient {
  readonly lessons: Client<typeof Lessons>;
  readonly sessions: Client<typeof Sessions>;
  readonly tasks: Client<typeof Tasks>;
  readonly reconciler: Client<typeof Reconciler>;
  readonly processors: Client<typeof Processors>;
  readonly events: Client<typeof Events>;
  readonly health: Client<typeof Health>;

  private readonly sessionManager: Http2SessionManager;
  private readonly quietTimeoutMs: number;
  private readonly logger: Logger;

  constructor(address: string, options: ConnectOptions = {}) {
    const { token, tls = false, quietTimeoutMs = DEFAULT_QUIET_TIMEOUT_MS, logger = console } = options;
    const baseUrl = `${tls === false ? "http" : "https"}://${address}`;
    this.sessionManager = new Http2SessionManager(baseUrl, {}, typeof tls === "object" ? tls : undefined);
    const interceptors = [...(token ? [bearer(token)] : []), ...(options.interceptors ?? [])];
    const transport = createGrpcTransport({ baseUrl, sessionManager: this.sessionManager, interceptors });
    this.lessons = createClient(Lessons, transport);
    this.sessions = createClient(Sessions, transport);
    this.tasks = createClient(Tasks, transport);
    this.reconciler = createClient(Reconciler, transport);
    this.processors = createClient(Processors, transport);
    this.events = createClient(Events, transport);
    this.health = createClient(Health, transport);
    this.quietTimeoutMs = quietTimeoutMs;
    this.logger = logger;
  }

  /**
   * Records `lesson` and never rejects: within the quiet timeout it resolves
   * to bosun's answer, or to undefined after logging a warning when anything
   * went wrong (bosun unreachable, a refusal, the deadline). For callers on
   * their own hot paths, whose work must not depend on the journal.
   */
  async recordLessonQuietly(
    lesson: MessageInitShape<typeof LessonSchema>,
  ): Promise<RecordLessonResponse | undefined> {
    try {
      return await this.lessons.recordLesson({ lesson }, { timeoutMs: this.quietTimeoutMs });
    } catch (error) {
      this.logger.warn(
        `bosun: lesson not recorded (lesson_type=${JSON.stringify(lesson?.lessonType ?? "")} ` +
          `work_item_id=${JSON.stringify(lesson?.workItemId ?? "")}): ${ConnectError.from(error).message}`,
      );
      return undefined;
    }
  }

  /** Follows the change log, resuming after disconnects; see Watch. */
  watch(options: WatchOptions = {}): Watch {
    return new Watch(this.events, this.logger, options);
  }

  /** Closes the connection; open calls and watches fail. */
  close(): void {
    this.sessionManager.abort();
  }
}

/** Connects to bosun at `address` ("host:port"), lazily: calls fail with UNAVAILABLE while it is unreachable. */
export function connect(address: string, options: ConnectOptions = {}): BosunClient {
  return new BosunClient(address, options);
}

function bearer(token: string): Interceptor {
  return (next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
}
